-- The index: a heartbeat (POST, no body) from a random live device of the loaded world.
-- args: devices file.
dofile(os.getenv("PM_WRK_LUA") .. "/common.lua")

local tokens, hosts

function init(args)
  seed_random()
  tokens, hosts = read_devices(args[1])
end

function request()
  local d = math.random(#tokens)
  return wrk.format("POST", "/index/v1/heartbeat", {["Authorization"] = tokens[d],
                                                    ["X-Forwarded-For"] = hosts[d]})
end
