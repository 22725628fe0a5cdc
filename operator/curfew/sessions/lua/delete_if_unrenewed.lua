-- delete_if_unrenewed: remove one connect-redis (express-session), django or flask-session
-- session whole (its one string key is all these stores keep of a session in Redis). The
-- sidecar's expiry and the purge both remove sessions with this script; only the purge passes
-- the guards: the bytes it judged and the TTL it read, since these apps save a session again
-- (the same bytes, a fresh TTL) when its user is active, and express-session's touch is
-- connect-redis's EXPIRE (a higher TTL, the value as it was), so a TTL longer than the one read
-- means the user came back.
-- KEYS: 1 the app's session key
-- ARGV: 1 the Redis types a session key has, comma-separated ('string')
--       2 the value the purge read (absent: no guard, the sidecar's expiry)
--       3 the key's remaining TTL (ms) the purge read with it, -1 when it had none
-- Returns 1 if deleted; 0 if absent, of another type, or saved again or touched since the purge
-- read it.
local key = KEYS[1]
local kind = redis.call('TYPE', key)['ok']
if kind == 'none' or not string.find(',' .. ARGV[1] .. ',', ',' .. kind .. ',', 1, true) then
  return 0
end
if ARGV[2] then
  if redis.call('GET', key) ~= ARGV[2] then
    return 0
  end
  local read, now = tonumber(ARGV[3]), redis.call('PTTL', key)
  if (read < 0 and now >= 0) or (read >= 0 and (now < 0 or now > read)) then
    return 0
  end
end
return redis.call('DEL', key)
