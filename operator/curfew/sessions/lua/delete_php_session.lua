-- delete_php_session: remove one PHP session (phpredis's save handler), for the sidecar's
-- expiry and the purge alike. The whole session is one string key; PHP renews its TTL to
-- session.gc_maxlifetime on every request that starts the session (SETEX when the data changed,
-- EXPIRE under lazy_write when it did not), so a TTL higher than the one the purge judged means
-- the user came back since: the session stays.
-- KEYS: 1 the session key (<prefix><id>)
-- ARGV: 1 the Redis types a session key has, comma-separated ('string'),
--       2 '' (the sidecar: Curfew's record decided) or the PTTL (ms) the purge judged by
-- Returns 1 if deleted, 0 if absent, of another type, or renewed since it was judged.
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind == 'none' or not string.find(',' .. ARGV[1] .. ',', ',' .. kind .. ',', 1, true) then
  return 0
end
if ARGV[2] ~= nil and ARGV[2] ~= '' and redis.call('PTTL', KEYS[1]) > tonumber(ARGV[2]) then
  return 0
end
return redis.call('DEL', KEYS[1])
