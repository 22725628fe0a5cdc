-- delete_if_unchanged: remove an app's session key only if the field the purge job judged
-- still holds the same bytes (ARGV[1] names a hash field; empty means the whole string value).
-- KEYS: 1 the app's session key
-- ARGV: 1 field ('' for a string key), 2 the value the purge job read
-- Returns 1 if deleted, 0 if the session moved (or is gone).
local v
if ARGV[1] == '' then
  v = redis.call('GET', KEYS[1])
else
  v = redis.call('HGET', KEYS[1], ARGV[1])
end
if v == ARGV[2] then
  return redis.call('DEL', KEYS[1])
end
return 0
