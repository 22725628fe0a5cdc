-- delete_app_session: delete the app's own session key, only if it holds that format's shape.
-- A client value names the key; the type check keeps any other key of the app (Spring's
-- sessions:expirations sorted set, say) from being taken for a session and deleted.
-- KEYS: 1 the app's session key
-- ARGV: 1 the Redis types a session key of the format has, comma-separated
-- Returns 1 if deleted, 0 if absent or of another type.
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind == 'none' or not string.find(',' .. ARGV[1] .. ',', ',' .. kind .. ',', 1, true) then
  return 0
end
return redis.call('DEL', KEYS[1])
