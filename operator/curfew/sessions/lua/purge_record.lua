-- purge_record: expire one session the purge job judged expired, unless it moved since.
-- The re-check is a compare on the last-activity field: a session touched after it was judged
-- keeps its record, so a purge never removes a session wrongly, even while the sidecar serves it.
-- KEYS: 1 record hash, 2 due index
-- ARGV: 1 sid, 2 last activity (ms) the purge judged, 3 reason (idle/absolute), 4 retention ms
-- Returns 'removed', 'touched', 'gone' (Redis had expired the record: its index entry, which
-- only the record's owner names, is left to the index walk's repair) or 'done' (already a
-- tombstone, by another run or by the sidecar).
local rec, due = KEYS[1], KEYS[2]
local f = redis.call('HMGET', rec, 'l', 'x', 'o')
if not f[1] then
  return 'gone'
end
local member = f[3] .. ARGV[1]
if f[2] then
  redis.call('ZREM', due, member)
  return 'done'
end
if f[1] ~= ARGV[2] then
  return 'touched'
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', rec, 'x', ARGV[3], 't', string.format('%d', now))
redis.call('ZREM', due, member)
redis.call('PEXPIREAT', rec, string.format('%d', now + tonumber(ARGV[4])))
return 'removed'
