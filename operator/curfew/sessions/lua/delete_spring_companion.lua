-- delete_spring_companion: on a Redis Cluster, remove what one key Spring Session keeps beside a
-- session's hash holds of that session, once the hash is gone (delete_spring_session.lua
-- called with the hash alone). Each companion lies in a slot of its own, so each is one call,
-- on its own node; every operation is idempotent, so a run that stopped half-way is finished
-- by the next one.
-- KEYS: 1 the companion key
-- ARGV: 1 the operation, then its members:
--   'string'     delete the key if it is a string (the shadow key sessions:expires:<id>)
--   'zrem' m..   remove the members if the key is a sorted set (sessions:expirations)
--   'srem' m..   remove the members if the key is a set (expirations:<minute>, an index)
--   'set'        delete the key if it is a set (the reactive repository's sessions:<id>:idx)
-- Returns 1 if the key held that type (and was changed where it held the members), else 0.
local call = redis.call
local kind = call('TYPE', KEYS[1])['ok']
local op = ARGV[1]
if op == 'string' and kind == 'string' then
  return call('DEL', KEYS[1])
elseif op == 'zrem' and kind == 'zset' and #ARGV > 1 then
  return math.min(1, call('ZREM', KEYS[1], unpack(ARGV, 2)))
elseif op == 'srem' and kind == 'set' and #ARGV > 1 then
  return math.min(1, call('SREM', KEYS[1], unpack(ARGV, 2)))
elseif op == 'set' and kind == 'set' then
  return call('DEL', KEYS[1])
end
return 0
