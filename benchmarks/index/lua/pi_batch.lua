-- The index: a batched announce (POST, JSON, one device's holdings with their bitfields)
-- from a random device of the batch world, re-announcing what it holds.
-- args: batch file ("credential<TAB>address<TAB>JSON body").
dofile(os.getenv("PM_WRK_LUA") .. "/common.lua")

local tokens, hosts, bodies

function init(args)
  seed_random()
  tokens, hosts, bodies = {}, {}, {}
  for _, line in ipairs(read_lines(args[1])) do
    local token, host, body = line:match("^([^\t]+)\t([^\t]+)\t(.+)$")
    tokens[#tokens + 1] = "Bearer " .. token
    hosts[#hosts + 1] = host
    bodies[#bodies + 1] = body
  end
end

function request()
  local d = math.random(#tokens)
  return wrk.format("POST", "/index/v1/announce", {["Authorization"] = tokens[d],
                    ["X-Forwarded-For"] = hosts[d], ["Content-Type"] = "application/json"},
                    bodies[d])
end
