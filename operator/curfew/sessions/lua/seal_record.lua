-- seal_record: store the app's sealed session id (identity.AppIdSeal) in a record the sidecar
-- has just created, so the purge job can reach the app's session from the due index.
-- KEYS: 1 record hash
-- ARGV: 1 the sealed app id
-- Returns 1 when written, 0 when the record is gone (never recreated: a hash written here would
-- have no TTL) or already holds one (a seal is never replaced).
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
return redis.call('HSETNX', KEYS[1], 's', ARGV[1])
