-- delete_spring_session: remove one Spring Session (Data Redis) session whole, atomically: the
-- sidecar's expiry and the purge job both end a Spring session with this script. On a Redis
-- Cluster it is called with the hash alone (its companions lie in other slots and go by
-- delete_spring_companion.lua, one key at a time, after it).
-- KEYS: 1 the session hash (<ns>sessions:<id>); 2.. its companion keys (the shadow key, the
--       expiration stores, the principal indexes, the reactive repository's index sets)
-- ARGV: 1 n, the number of guarded hash fields; 2 .. 2n+1 pairs of a field and '+' followed by
--       the bytes the caller read ('-': the field was absent); then, for each KEYS[2..] in
--       order, an operation, a count c and c members:
--         'string' 0      delete the key if it is a string (the shadow key)
--         'zrem' c m..    remove the members if the key is a sorted set
--         'srem' c m..    remove the members if the key is a set
--         'set' c m..     a guard: the set must hold exactly these members (c = 0: hold none,
--                         or be no set); the key is deleted with the session (the reactive
--                         repository's sessions:<id>:idx, whose members the caller read and
--                         named the index sets by)
-- Returns 1 if the session was removed, 0 if the hash is absent or of another type, -1 if a
-- guarded field or set changed since it was read (the caller judged another session: nothing
-- is removed). The members are computed from what is guarded, so they are the right ones.
-- With RedisSessionRepository (no index) only the hash exists: the other commands find nothing.
local call = redis.call
if call('TYPE', KEYS[1])['ok'] ~= 'hash' then
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
local ops = {}
local at = 2 + 2 * n
for k = 2, #KEYS do
  local c = tonumber(ARGV[at + 1])
  ops[k] = {ARGV[at], at + 2, at + 1 + c}
  at = at + 2 + c
end
for k = 2, #KEYS do
  local op, first, last = ops[k][1], ops[k][2], ops[k][3]
  if op == 'set' then
    -- A key of another type is no list (the caller read none): it is left as it is.
    local size = call('TYPE', KEYS[k])['ok'] == 'set' and call('SCARD', KEYS[k]) or 0
    if size ~= last - first + 1 then return -1 end
    for i = first, last do
      if call('SISMEMBER', KEYS[k], ARGV[i]) == 0 then return -1 end
    end
  end
end
call('DEL', KEYS[1])
for k = 2, #KEYS do
  local op, first, last = ops[k][1], ops[k][2], ops[k][3]
  local kind = call('TYPE', KEYS[k])['ok']
  if op == 'string' and kind == 'string' then
    call('DEL', KEYS[k])
  elseif op == 'zrem' and kind == 'zset' and last >= first then
    call('ZREM', KEYS[k], unpack(ARGV, first, last))
  elseif op == 'srem' and kind == 'set' and last >= first then
    call('SREM', KEYS[k], unpack(ARGV, first, last))
  elseif op == 'set' and kind == 'set' then
    call('DEL', KEYS[k])
  end
end
return 1
