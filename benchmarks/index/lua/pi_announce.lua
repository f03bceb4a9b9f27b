-- The index: a single-work announce, the tracker's case (GET, numwant=50), answered with
-- sources. A random (work, holder) pair of the loaded world, so every request is a
-- re-announce of a known holding (the steady state), with the holder's own credential,
-- address (X-Forwarded-For, trusted from loopback as from the proxy) and bitfield
-- (none: every piece).
-- args: pairs file ("work<TAB>device line<TAB>bitfield"), devices file.
dofile(os.getenv("PM_WRK_LUA") .. "/common.lua")

local works, owners, bits, tokens, hosts

function init(args)
  seed_random()
  works, owners, bits = {}, {}, {}
  for _, line in ipairs(read_lines(args[1])) do
    local work, owner, b = line:match("^([^\t]+)\t([^\t]+)\t([^\t]*)$")
    works[#works + 1] = work
    owners[#owners + 1] = tonumber(owner)
    bits[#bits + 1] = b
  end
  tokens, hosts = read_devices(args[2])
end

function request()
  local i = math.random(#works)
  local d = owners[i]
  local path = "/index/v1/announce?work=" .. works[i] .. "&port=7000&numwant=50"
  if bits[i] ~= "" then path = path .. "&bitfield=" .. bits[i] end
  return wrk.format("GET", path, {["Authorization"] = tokens[d],
                                  ["X-Forwarded-For"] = hosts[d]})
end
