"""Where the index keeps its state in Redis, and the scripts that change it atomically.

Shared by the service (asynchronous, ``link.py``) and the platform (redis-py, ``store.py``),
so both read and write one layout. Every change is one script call: one round trip, and
no other client ever sees half an announce. Lookups only read, with plain commands
(``lookup.py``).

Keys (docs/INDEX.md has the reasons):

- ``pmi:p:{device}`` string, expiring after the peer timeout: the peer is live while it
  exists. Its value is ``SEEN<US>network<US>fragment<US>user<US>host<US>port<US>version``,
  ``SEEN`` ten digits of Unix time (a heartbeat rewrites them in place), ``fragment`` the
  peer's part of a sources answer, already JSON.
- ``pmi:w:{work}`` sorted set, device -> pieces held: who holds the work, most first.
- ``pmi:h:{device}`` hash, work -> "", the works a peer holds (a full announce drops the
  others). A hash, not a set: Redis 7.0 packs a small hash in one allocation (a listpack),
  a set of strings not, and there is one of these per live peer.
- ``pmi:pb:{device}`` hash, work -> base64 bitfield, for the peer's partial holdings only
  (a holder of every piece needs none, which is most of them). Per peer, not per work, so
  that an announce writes every bitfield of its batch in one command (and clears the ones
  now complete in one more), not one or two per work: a third fewer commands for a batch
  of 100 (docs/INDEX.md). Kept apart from ``pmi:h:`` because a long value (a bitfield of
  over 384 pieces) would turn that hash out of its packed encoding for all its works.
- ``pmi:works`` hash, work -> ``{"n": pieces, "s": [web seeds]}``: what is on sale, kept by
  the platform; ``pmi:works:gen`` counts its changes.
- ``pmi:revoked`` sorted set, ``d:<device>``, ``u:<user>`` or ``c:<credential id>`` -> until
  when (Unix time); ``pmi:revoked:gen`` counts its changes.
- ``pmi:dirty`` hash, device -> a count of changes to its endpoint or holdings, and
  ``pmi:seen`` hash, device -> when it last heartbeat (ms): the durable record's to-do
  lists, drained into PostgreSQL in batches by the platform.

Holdings keys expire too (``HOLDINGS_TTL``), refreshed by announces, so nothing needs a
sweeper; agents re-announce in full every ``REANNOUNCE_SECONDS``, well within it.
"""

from __future__ import annotations

SEP = "\x1f"
PEER = "pmi:p:"
HOLDERS = "pmi:w:"
HELD = "pmi:h:"
BITFIELDS = "pmi:pb:"
WORKS = "pmi:works"
WORKS_GEN = "pmi:works:gen"
REVOKED = "pmi:revoked"
REVOKED_GEN = "pmi:revoked:gen"
DIRTY = "pmi:dirty"
SEEN = "pmi:seen"

REANNOUNCE_SECONDS = 1800
HOLDINGS_TTL = 4 * REANNOUNCE_SECONDS
MAX_HOLDINGS_PER_ANNOUNCE = 1000

# KEYS: peer, held, dirty, bitfields, then holders per work.
# ARGV: peer value, peer ttl, holdings ttl, replace (0/1), device,
#       then (work, pieces held, bitfield or "" for all) per work.
# The mark in the to-do list is a counter, so a change made while a flush runs always
# leaves a different value than the flush read (a time could repeat within its unit).
ANNOUNCE = """
local device, hold_ttl = ARGV[5], tonumber(ARGV[3])
local held, bits_key = KEYS[2], KEYS[4]
redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[2]))
local listed = {}
local n = #KEYS - 4
for i = 1, n do
  local holders = KEYS[4 + i]
  local at = 6 + 3 * (i - 1)
  local work, have, bits = ARGV[at], tonumber(ARGV[at + 1]), ARGV[at + 2]
  listed[work] = true
  if have == 0 then
    redis.call('ZREM', holders, device)
    redis.call('HDEL', held, work)
    redis.call('HDEL', bits_key, work)
  else
    redis.call('ZADD', holders, have, device)
    redis.call('EXPIRE', holders, hold_ttl)
    redis.call('HSET', held, work, '')
    if bits == '' then
      redis.call('HDEL', bits_key, work)
    else
      redis.call('HSET', bits_key, work, bits)
    end
  end
end
if ARGV[4] == '1' then
  for _, work in ipairs(redis.call('HKEYS', held)) do
    if not listed[work] then
      redis.call('ZREM', '""" + HOLDERS + """' .. work, device)
      redis.call('HDEL', held, work)
      redis.call('HDEL', bits_key, work)
    end
  end
end
redis.call('EXPIRE', held, hold_ttl)
redis.call('EXPIRE', bits_key, hold_ttl)
redis.call('HINCRBY', KEYS[3], device, 1)
return n
"""

# KEYS: seen. ARGV: now (ten digits), peer ttl, holdings ttl, now (ms), devices...
# Returns the devices that are not live (they must announce again).
HEARTBEAT = """
local missing = {}
for i = 5, #ARGV do
  local device = ARGV[i]
  local key = '""" + PEER + """' .. device
  if redis.call('EXPIRE', key, ARGV[2]) == 1 then
    redis.call('SETRANGE', key, 0, ARGV[1])
    redis.call('EXPIRE', '""" + HELD + """' .. device, ARGV[3])
    redis.call('EXPIRE', '""" + BITFIELDS + """' .. device, ARGV[3])
    redis.call('HSET', KEYS[1], device, ARGV[4])
  else
    missing[#missing + 1] = device
  end
end
return missing
"""

# KEYS: dirty or seen. ARGV: (device, stamp) pairs read before a flush. A field is dropped only if
# it still holds what was read: a change during the flush stays to be written next time.
DIRTY_DONE = """
local done = 0
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    redis.call('HDEL', KEYS[1], ARGV[i])
    done = done + 1
  end
end
return done
"""


def peer_key(device: str) -> str:
    return PEER + device


def holders_key(work: str) -> str:
    return HOLDERS + work


def bitfields_key(device: str) -> str:
    return BITFIELDS + device


def held_key(device: str) -> str:
    return HELD + device
