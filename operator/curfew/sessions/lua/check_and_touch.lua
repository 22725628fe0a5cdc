-- check_and_touch: the hot-path decision for one request, atomically, on Redis's clock.
-- Mirrors curfew/sessions/lifetime.py:decide. All keys share the shard's hash tag (one slot).
-- KEYS: 1 record hash, 2 due index (zset), 3 limit classes (zset), [4 the app's session key]
-- ARGV: 1 sid, 2 idle ms, 3 absolute ms, 4 renewal ms (0: none), 5 activity (1/0),
--       6 policy, 7 workload, 8 app session known (1/0), 9 retention ms after a deadline,
--       10 owner id of (policy, workload), for a new record, 11 touch granularity cap (ms),
--       12 when a missing record may be created: '1' always (the app vouched for the session),
--          '0' never, 'k' when KEYS[4] exists with one of the types in 13,
--       13 the app key's Redis types, comma-separated (for 'k')
-- Returns {decision, idle remaining ms, absolute remaining ms, renewal due (1/0)}; 'unknown'
-- when there is no record and none may be created: a stranger's value leaves nothing behind.
-- KEYS[4] is in another slot than the others on a Cluster, where the caller never passes it
-- (store.py checks the app key in a call of its own, on first sight only).
-- The due index member is the RECORD's owner and the sid; its score is the earliest deadline
-- under the recorded limits, plus 0.5 when that is the absolute one (keys.py:due_score). Both
-- move here with the record, so an entry due by now is a session its own fields call expired.
-- Most requests of a busy session only read (see the touch granularity below): that path
-- converts only what it needs and builds no strings.
local call, tonumber, min, floor = redis.call, tonumber, math.min, math.floor
local rec = KEYS[1]
local t = call('TIME')
local now = tonumber(t[1]) * 1000 + floor(tonumber(t[2]) / 1000)
local idle, abs = tonumber(ARGV[2]), tonumber(ARGV[3])
local function s(n) return string.format('%d', n) end
local function score(di, da)
  if da < di then return s(da) .. '.5' end
  return s(di)
end

local f = call('HMGET', rec, 'c', 'l', 'i', 'a', 'u', 'x', 'o')
if not f[1] then
  local create = ARGV[12]
  if create == 'k' then
    local kind = call('TYPE', KEYS[4])['ok']
    if kind == 'none' or not string.find(',' .. ARGV[13] .. ',', ',' .. kind .. ',', 1, true) then
      return {'unknown', 0, 0, 0}
    end
  elseif create ~= '1' then
    return {'unknown', 0, 0, 0}
  end
  local di, da = now + idle, now + abs
  call('HSET', rec, 'c', s(now), 'l', s(now), 'i', s(idle), 'a', s(abs), 'u', s(now),
    'p', ARGV[6], 'w', ARGV[7], 'k', ARGV[8], 'o', ARGV[10])
  call('ZADD', KEYS[2], score(di, da), ARGV[10] .. ARGV[1])
  call('ZADD', KEYS[3], 'GT', s(da), s(idle) .. ':' .. s(abs))
  call('PEXPIREAT', rec, s(min(di, da) + tonumber(ARGV[9])))
  return {'new', idle, abs, 0}
end
if f[6] then
  return {f[6], 0, 0, 0}
end

local c, l = tonumber(f[1]), tonumber(f[2])
local ri, ra = tonumber(f[3]), tonumber(f[4])
local ei, ea = min(ri, idle), min(ra, abs)
local di, da = l + ei, c + ea
if now >= min(di, da) then
  -- The deadline that passed first names the reason. The record stays as a tombstone so a
  -- replayed id keeps getting this answer instead of starting a new session.
  local reason = 'absolute'
  if di <= da then reason = 'idle' end
  call('HSET', rec, 'i', s(ei), 'a', s(ea), 'x', reason, 't', s(now))
  call('ZREM', KEYS[2], f[7] .. ARGV[1])
  call('PEXPIREAT', rec, s(now + tonumber(ARGV[9])))
  return {reason, 0, 0, 0}
end

local changed = false
if ei ~= ri or ea ~= ra then
  call('HSET', rec, 'i', s(ei), 'a', s(ea))
  call('ZADD', KEYS[3], 'GT', s(c + ea), s(ei) .. ':' .. s(ea))
  changed = true
end
-- Activity within the touch granularity of the recorded one is not written again
-- (rules.py:touch_granularity_ms): the idle deadline may come that much early, never late.
if ARGV[5] == '1' and now - l >= min(tonumber(ARGV[11]), floor(ei / 16)) then
  di = now + ei
  call('HSET', rec, 'l', s(now))
  changed = true
end
if changed then
  call('ZADD', KEYS[2], score(di, da), f[7] .. ARGV[1])
  call('PEXPIREAT', rec, s(min(di, da) + tonumber(ARGV[9])))
end
local renewal = tonumber(ARGV[4])
local renewal_due = 0
if renewal > 0 and now - (tonumber(f[5]) or c) >= renewal then renewal_due = 1 end
return {'allowed', di - now, da - now, renewal_due}
