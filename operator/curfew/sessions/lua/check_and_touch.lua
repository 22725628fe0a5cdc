-- check_and_touch: the hot-path decision for one request, atomically, on Redis's clock.
-- Mirrors curfew/sessions/rules.py:decide. All keys share the shard's hash tag (one slot).
-- KEYS: 1 record hash, 2 due index (zset), 3 limit classes (zset)
-- ARGV: 1 sid, 2 idle ms, 3 absolute ms, 4 renewal ms (0: none), 5 activity (1/0),
--       6 policy, 7 workload, 8 app session known (1/0), 9 retention ms after a deadline,
--       10 owner id of (policy, workload), for a new record, 11 touch granularity cap (ms)
-- Returns {decision, idle remaining ms, absolute remaining ms, renewal due (1/0)}
-- The due index member is the RECORD's owner and the sid; its score is the earliest deadline
-- under the recorded limits, plus 0.5 when that is the absolute one (keys.py:due_score). Both
-- move here with the record, so an entry due by now is a session its own fields call expired.
local rec, due, lim = KEYS[1], KEYS[2], KEYS[3]
local sid = ARGV[1]
local idle, abs, renewal = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local retain = tonumber(ARGV[9])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function s(n) return string.format('%d', n) end
local function score(di, da)
  if da < di then return s(da) .. '.5' end
  return s(di)
end

local f = redis.call('HMGET', rec, 'c', 'l', 'i', 'a', 'u', 'x', 'o')
if not f[1] then
  local di, da = now + idle, now + abs
  redis.call('HSET', rec, 'c', s(now), 'l', s(now), 'i', s(idle), 'a', s(abs), 'u', s(now),
    'p', ARGV[6], 'w', ARGV[7], 'k', ARGV[8], 'o', ARGV[10])
  redis.call('ZADD', due, score(di, da), ARGV[10] .. sid)
  redis.call('ZADD', lim, 'GT', s(da), s(idle) .. ':' .. s(abs))
  redis.call('PEXPIREAT', rec, s(math.min(di, da) + retain))
  return {'new', idle, abs, 0}
end
if f[6] then
  return {f[6], 0, 0, 0}
end

local member = f[7] .. sid
local c, l = tonumber(f[1]), tonumber(f[2])
local ri, ra = tonumber(f[3]), tonumber(f[4])
local ei, ea = math.min(ri, idle), math.min(ra, abs)
local di, da = l + ei, c + ea
if now >= math.min(di, da) then
  -- The deadline that passed first names the reason. The record stays as a tombstone so a
  -- replayed id keeps getting this answer instead of starting a new session.
  local reason = 'absolute'
  if di <= da then reason = 'idle' end
  redis.call('HSET', rec, 'i', s(ei), 'a', s(ea), 'x', reason, 't', s(now))
  redis.call('ZREM', due, member)
  redis.call('PEXPIREAT', rec, s(now + retain))
  return {reason, 0, 0, 0}
end

local changed = false
if ei ~= ri or ea ~= ra then
  redis.call('HSET', rec, 'i', s(ei), 'a', s(ea))
  redis.call('ZADD', lim, 'GT', s(c + ea), s(ei) .. ':' .. s(ea))
  changed = true
end
-- Activity within the touch granularity of the recorded one is not written again
-- (rules.py:touch_granularity_ms): the idle deadline may come that much early, never late.
if ARGV[5] == '1' and now - l >= math.min(tonumber(ARGV[11]), math.floor(ei / 16)) then
  di = now + ei
  redis.call('HSET', rec, 'l', s(now))
  changed = true
end
if changed then
  redis.call('ZADD', due, score(di, da), member)
  redis.call('PEXPIREAT', rec, s(math.min(di, da) + retain))
end
local u = tonumber(f[5]) or c
local renewal_due = 0
if renewal > 0 and now - u >= renewal then renewal_due = 1 end
return {'allowed', di - now, da - now, renewal_due}
