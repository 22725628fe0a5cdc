-- empty_django_session: end a Django cached_db session by emptying its cache entry, keeping its
-- TTL. Deleting the entry would not end it: Django reads the session back from its database,
-- which Curfew cannot reach. An empty session is an anonymous one; its next save empties the
-- database row too, and its TTL runs out when the row's expire_date does.
-- The sidecar's expiry and the purge both end such sessions with this script; the purge judged
-- the session from what it read (ARGV 2 and 3), the sidecar passes neither.
-- KEYS: 1 the app's session key
-- ARGV: 1 the Redis types a session key has (comma-separated), 2 the value judged (absent or
--       '': none), 3 the remaining TTL judged in ms (absent or '': none)
-- Returns 1 if emptied, 0 if absent, of another type, already empty, or changed since judged.
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind == 'none' or not string.find(',' .. ARGV[1] .. ',', ',' .. kind .. ',', 1, true) then
  return 0
end
local v = redis.call('GET', KEYS[1])
if ARGV[2] and ARGV[2] ~= '' and v ~= ARGV[2] then
  return 0
end
if ARGV[3] and ARGV[3] ~= '' and redis.call('PTTL', KEYS[1]) > tonumber(ARGV[3]) then
  return 0
end
-- The serializer django-redis wrote with: a pickle (protocol 2 and up opens with 0x80) or JSON.
local empty = '{}'
if string.byte(v, 1) == 128 then
  empty = '\128\004}\148.'  -- pickle.dumps({}, 4)
end
if v == empty then
  return 0
end
redis.call('SET', KEYS[1], empty, 'KEEPTTL')
return 1
