-- The index: a source lookup (GET .../sources?n=50) of a random work of the loaded world
-- by a random device of it.
-- args: works file, devices file.
dofile(os.getenv("PM_WRK_LUA") .. "/common.lua")

local works, tokens, hosts

function init(args)
  seed_random()
  works = read_lines(args[1])
  tokens, hosts = read_devices(args[2])
end

function request()
  local d = math.random(#tokens)
  return wrk.format("GET", "/index/v1/works/" .. works[math.random(#works)] .. "/sources?n=50",
                    {["Authorization"] = tokens[d], ["X-Forwarded-For"] = hosts[d]})
end
