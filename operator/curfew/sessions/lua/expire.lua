-- expire: turn a session record into a tombstone and take it out of the purge index.
-- Idempotent: an existing tombstone keeps its reason. A missing record has no owner to name its
-- index entry by: the purge job repairs that entry once the record's retention is over.
-- KEYS: 1 record hash, 2 due index
-- ARGV: 1 sid, 2 reason (idle/absolute), 3 retention ms
-- Returns 1 if a live record was expired, 0 otherwise.
local rec, due = KEYS[1], KEYS[2]
local f = redis.call('HMGET', rec, 'c', 'x', 'o')
if not f[1] then
  return 0
end
redis.call('ZREM', due, f[3] .. ARGV[1])
if f[2] then
  return 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', rec, 'x', ARGV[2], 't', string.format('%d', now))
redis.call('PEXPIREAT', rec, string.format('%d', now + tonumber(ARGV[3])))
return 1
