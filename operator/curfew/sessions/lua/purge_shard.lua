-- purge_shard: judge (and, in remove mode, expire) one batch of a shard's due index, atomically.
-- Mirrors curfew/sessions/rules.py:judge. Judging and removing in one script is the purge's
-- atomic re-check: a session touched by the sidecar is either judged before or after the touch,
-- never removed on a stale reading. Record keys share the due index's hash tag (one slot).
-- KEYS: 1 the shard's due index
-- ARGV: 1 record key prefix of the shard ('<ns>{NN}:r:'), 2 now (ms, the run's snapshot),
--       3 read due entries up to (ms), 4 offset, 5 count, 6 mode: count | list | remove,
--       7 number of workloads, then per workload: id, idle ms, absolute ms
-- Returns {examined, kept, repaired, idle, absolute, tightened, [reason, policy, workload, sids]...}
-- (the groups only in list and remove modes): the sessions found expired, grouped by reason,
-- policy and workload, each group's sids joined by single spaces. One reply string per group
-- instead of four per session: the job turns a group into audit lines without touching each
-- session in Python.
local due = KEYS[1]
local prefix, now, upto = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local mode = ARGV[6]
local remove = mode == 'remove'
local listing = mode ~= 'count'
local current = {}
for n = 0, tonumber(ARGV[7]) - 1 do
  current[ARGV[8 + n * 3]] = {tonumber(ARGV[9 + n * 3]), tonumber(ARGV[10 + n * 3])}
end
local sids = redis.call('ZRANGEBYSCORE', due, '-inf', upto, 'LIMIT', ARGV[4], ARGV[5])
local kept, repaired = 0, 0
local counts = {idle = 0, absolute = 0, tightened = 0}
local groups, order, last = {}, {}, nil
local gone = {}
for _, sid in ipairs(sids) do
  local rec = prefix .. sid
  local f = redis.call('HMGET', rec, 'c', 'l', 'i', 'a', 'p', 'w', 'x')
  if not f[1] or f[7] then
    -- Redis dropped the record, or it is already a tombstone: only the index entry is left.
    if not f[1] then repaired = repaired + 1 end
    gone[#gone + 1] = sid
  else
    local c, l, i, a = tonumber(f[1]), tonumber(f[2]), tonumber(f[3]), tonumber(f[4])
    local di, da = l + i, c + a
    local reason, limit
    if now >= math.min(di, da) then
      if di <= da then reason = 'idle' else reason = 'absolute' end
      limit = reason
    else
      local cur = current[f[6]]
      if cur then
        local ti, ta = l + math.min(i, cur[1]), c + math.min(a, cur[2])
        if now >= math.min(ti, ta) then
          reason = 'tightened'
          if ti <= ta then limit = 'idle' else limit = 'absolute' end
        end
      end
    end
    if reason then
      counts[reason] = counts[reason] + 1
      if remove then
        -- The record keeps the TTL its last touch gave it (its deadline plus the retention),
        -- so the tombstone outlives its deadline by the retention, as one the sidecar makes.
        redis.call('HSET', rec, 'x', limit, 't', ARGV[2])
        gone[#gone + 1] = sid
      end
      if listing then
        local p, w = f[5] or '', f[6] or ''
        local g = last
        if not (g and g[1] == reason and g[2] == p and g[3] == w) then
          local id = reason .. '\0' .. p .. '\0' .. w
          g = groups[id]
          if not g then
            g = {reason, p, w, {}}
            groups[id] = g
            order[#order + 1] = g
          end
          last = g
        end
        local list = g[4]
        list[#list + 1] = sid
      end
    else
      kept = kept + 1
    end
  end
end
if remove and #gone > 0 and #gone == #sids and ARGV[4] == '0' then
  -- Every entry read went, and they were the shard's first by score: remove them by rank.
  redis.call('ZREMRANGEBYRANK', due, 0, #gone - 1)
elseif remove and #gone > 0 then
  -- One variadic ZREM per batch, in slices that stay within Lua's stack for unpack().
  for s = 1, #gone, 1000 do
    redis.call('ZREM', due, unpack(gone, s, math.min(s + 999, #gone)))
  end
end
local reply = {#sids, kept, repaired, counts.idle, counts.absolute, counts.tightened}
for _, g in ipairs(order) do
  reply[#reply + 1] = g[1]
  reply[#reply + 1] = g[2]
  reply[#reply + 1] = g[3]
  reply[#reply + 1] = table.concat(g[4], ' ')
end
return reply
