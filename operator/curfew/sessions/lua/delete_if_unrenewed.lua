-- delete_if_unrenewed: remove an app's session string (django, flask-session) only if it still
-- holds the bytes the purge job judged and its TTL was not renewed since: these apps save a
-- session again (the same bytes, a fresh TTL) when its user is active, so a TTL longer than the
-- one read means the user came back.
-- KEYS: 1 the app's session key
-- ARGV: 1 the value the purge job read, 2 the remaining TTL it read (ms)
-- Returns 1 if deleted, 0 if the session moved (or is gone).
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
if redis.call('PTTL', KEYS[1]) > tonumber(ARGV[2]) then
  return 0
end
return redis.call('DEL', KEYS[1])
