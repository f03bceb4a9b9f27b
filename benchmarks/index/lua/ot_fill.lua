-- Loading opentracker: every (torrent, peer) pair announced once, in order, the pairs
-- shared out among the threads (thread k takes pairs k, k+T, k+2T, ...); a thread that is
-- through starts over (a re-announce changes nothing). The harness watches opentracker's
-- peer count and stops wrk when every pair is in.
-- args: hashes file, peers per torrent, port base, threads.
dofile(os.getenv("PM_WRK_LUA") .. "/common.lua")

local hashes, peers, base, step, at, total

function init(args)
  hashes = read_lines(args[1])
  peers, base, step = tonumber(args[2]), tonumber(args[3]), tonumber(args[4])
  total = #hashes * peers
  at = thread_number - 1
end

function request()
  local i = at
  at = at + step
  if at >= total then at = thread_number - 1 end
  local port = base + i % peers
  return wrk.format("GET", "/announce?info_hash=" .. hashes[math.floor(i / peers) + 1] ..
    "&peer_id=-PM0001-" .. string.format("%012d", port) .. "&port=" .. port ..
    "&uploaded=0&downloaded=0&left=0&numwant=0&compact=1")
end
