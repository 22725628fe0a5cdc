-- delete_spring_session: remove one Spring Session (Data Redis) session whole, atomically: the
-- sidecar's expiry and the purge job both end a Spring session with this script.
-- KEYS: 1 the session hash (<ns>sessions:<id>), 2 its shadow key (<ns>sessions:expires:<id>),
--       3 the sorted-set expiration store (<ns>sessions:expirations, Spring Session 3.4+),
--       4.. sets to remove a member from: the expirations:<minute> set, the principal index
-- ARGV: 1 n, the number of guarded hash fields; 2 .. 2n+1 pairs of a field and '+' followed by
--       the bytes the caller read ('-': the field was absent); then the sorted-set member (the
--       id as the serializer writes it); then one member per KEYS[4..], in order
-- Returns 1 if the session was removed, 0 if the hash is absent or of another type, -1 if a
-- guarded field changed since it was read (the caller judged another session: nothing is
-- removed). The members are computed from the guarded fields, so they are the right ones.
-- With RedisSessionRepository (no index) only the hash exists: the other commands find nothing.
local call = redis.call
local kind = call('TYPE', KEYS[1])['ok']
if kind ~= 'hash' then
  return 0
end
local n = tonumber(ARGV[1])
for i = 0, n - 1 do
  local v = call('HGET', KEYS[1], ARGV[2 + 2 * i])
  local want = ARGV[3 + 2 * i]
  if v then
    if want ~= '+' .. v then return -1 end
  elseif want ~= '-' then
    return -1
  end
end
call('DEL', KEYS[1])
if call('TYPE', KEYS[2])['ok'] == 'string' then
  call('DEL', KEYS[2])
end
local at = 2 + 2 * n
if call('TYPE', KEYS[3])['ok'] == 'zset' then
  call('ZREM', KEYS[3], ARGV[at])
end
for k = 4, #KEYS do
  if call('TYPE', KEYS[k])['ok'] == 'set' then
    call('SREM', KEYS[k], ARGV[at + k - 3])
  end
end
return 1
