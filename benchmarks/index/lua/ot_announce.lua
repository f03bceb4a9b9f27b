-- opentracker: a seeder's announce of one torrent, numwant=50, compact answer. A random
-- torrent of the whitelisted ones and a random one of its loaded peers (port), so every
-- request is a re-announce of a known peer (the steady state) answered with 50 peers.
-- args: hashes file (URL-quoted info hashes, one a line), peers per torrent, port base.
dofile(os.getenv("PM_WRK_LUA") .. "/common.lua")

local hashes, peers, base

function init(args)
  seed_random()
  hashes = read_lines(args[1])
  peers, base = tonumber(args[2]), tonumber(args[3])
end

function request()
  local port = base + math.random(0, peers - 1)
  return wrk.format("GET", "/announce?info_hash=" .. hashes[math.random(#hashes)] ..
    "&peer_id=-PM0001-" .. string.format("%012d", port) .. "&port=" .. port ..
    "&uploaded=0&downloaded=0&left=0&numwant=50&compact=1")
end
