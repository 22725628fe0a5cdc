-- purge_shard: judge (and, in remove mode, expire) one batch of a shard's due index, atomically.
-- Reading the index and removing from it in one script is the purge's atomic re-check: a touch
-- by the sidecar moves an entry's score in the same atomic step as its record, so an entry is
-- judged either before or after the touch, never removed on a stale reading.
-- KEYS: 1 the shard's due index
-- ARGV: 1 record key prefix of the shard ('<ns>{NN}:r:'), 2 now (ms, the run's snapshot),
--       3 read due entries up to (a score), 4 offset, 5 count, 6 mode: count | list | remove,
--       7 retention ms, 8 number of workloads, then per workload: id, idle ms, absolute ms
-- Returns {examined, kept, repaired, idle, absolute, tightened, [reason, policy, workload,
-- {members}]...} (the groups only in list and remove modes): the sessions found expired,
-- grouped by reason and owner, each group with its policy and workload and its index members
-- ('<owner><sid>', one owner per group), so the job strips the owner from a whole group at once.
--
-- An entry is '<owner><sid>' scored by its record's earliest deadline, + 0.5 when absolute
-- (keys.py). Entries due by now are the common path and never touch their records: their
-- records' own fields say they expired (check_and_touch recomputes that, so an expired record is
-- its own tombstone) and Redis drops them at deadline + retention. Each group's owner is named
-- by one HMGET p w on one of its records. Entries due before now - retention are index entries
-- whose record Redis has dropped: repaired. Only entries in the tightening window (now, upto]
-- read their record, to judge it by its workload's current, shorter limits.
local find, sub, floor, tonumber = string.find, string.sub, math.floor, tonumber
local due = KEYS[1]
local prefix, now = ARGV[1], tonumber(ARGV[2])
local lapsed = now - tonumber(ARGV[7])
local remove = ARGV[6] == 'remove'
local listing = ARGV[6] ~= 'count'
local entries = redis.call('ZRANGEBYSCORE', due, '-inf', ARGV[3], 'WITHSCORES',
  'LIMIT', ARGV[4], ARGV[5])
local kept, repaired, idle, absolute, tightened = 0, 0, 0, 0, 0
-- A group is {reason, owner, members}; `last` is the one the previous entry went to.
local groups, order, last = {}, {}, nil
local owners = {}
-- Entries that go form a leading run, removed by rank, until the first kept one; the few that
-- go after it are removed by member.
local lead, after = 0, {}
local current = nil

local function add(reason, member)
  local owner = sub(member, 1, 12)
  local id = reason .. owner
  local g = groups[id]
  if not g then
    g = {reason, owner, {}}
    groups[id] = g
    order[#order + 1] = g
  end
  last = g
  local list = g[3]
  list[#list + 1] = member
end

local function goes(member)
  if kept == 0 then lead = lead + 1 else after[#after + 1] = member end
end

local function current_limits()
  local limits = {}
  for n = 0, tonumber(ARGV[8]) - 1 do
    limits[ARGV[9 + n * 3]] = {tonumber(ARGV[10 + n * 3]), tonumber(ARGV[11 + n * 3])}
  end
  return limits
end

-- An entry in the tightening window: its record, judged by its workload's current limits.
local function window(member)
  local rec = prefix .. sub(member, 13)
  local f = redis.call('HMGET', rec, 'c', 'l', 'i', 'a', 'p', 'w', 'x')
  if not f[1] or f[7] then
    -- Gone before its time, or already a tombstone: only a stale index entry is left.
    if not f[1] then repaired = repaired + 1 end
    goes(member)
    return
  end
  current = current or current_limits()
  local cur = current[f[6]]
  if not cur then
    kept = kept + 1
    return
  end
  local c, l = tonumber(f[1]), tonumber(f[2])
  local ti, ta = l + math.min(tonumber(f[3]), cur[1]), c + math.min(tonumber(f[4]), cur[2])
  if now < math.min(ti, ta) then
    kept = kept + 1
    return
  end
  tightened = tightened + 1
  if remove then
    local limit = 'absolute'
    if ti <= ta then limit = 'idle' end
    -- Here the record's own fields do not say it expired: mark it, so check_and_touch answers
    -- with the reason whatever limits it is given later.
    redis.call('HSET', rec, 'x', limit, 't', ARGV[2])
    goes(member)
  end
  if listing then
    owners[sub(member, 1, 12)] = {f[5] or '', f[6] or ''}
    add('tightened', member)
  end
end

for k = 1, #entries, 2 do
  local member, score = entries[k], tonumber(entries[k + 1])
  local deadline = floor(score)
  if deadline > now then
    window(member)
  elseif deadline >= lapsed then
    -- The common path, inlined: an entry past its deadline under its record's own limits.
    local reason = 'idle'
    if score ~= deadline then
      reason = 'absolute'
      absolute = absolute + 1
    else
      idle = idle + 1
    end
    if remove then
      if kept == 0 then lead = lead + 1 else after[#after + 1] = member end
    end
    if listing then
      local g = last
      if g and g[1] == reason and find(member, g[2], 1, true) == 1 then
        local list = g[3]
        list[#list + 1] = member
      else
        add(reason, member)
      end
    end
  else
    repaired = repaired + 1
    goes(member)
  end
end

if remove and lead > 0 then
  local first = tonumber(ARGV[4])
  redis.call('ZREMRANGEBYRANK', due, first, first + lead - 1)
end
if remove and #after > 0 then
  -- One variadic ZREM, in slices that stay within Lua's stack for unpack().
  for s = 1, #after, 1000 do
    redis.call('ZREM', due, unpack(after, s, math.min(s + 999, #after)))
  end
end

-- The owner of a group: the policy and workload of the first of its records still there.
local function owner_of(g)
  local known = owners[g[2]]
  if known ~= nil then return known end
  for _, member in ipairs(g[3]) do
    local f = redis.call('HMGET', prefix .. sub(member, 13), 'p', 'w')
    if f[1] or f[2] then
      owners[g[2]] = {f[1] or '', f[2] or ''}
      return owners[g[2]]
    end
  end
  owners[g[2]] = false
  return false
end

local reply = {0, 0, 0, 0, 0, 0}
for _, g in ipairs(order) do
  local who = owner_of(g)
  if who then
    reply[#reply + 1] = g[1]
    reply[#reply + 1] = who[1]
    reply[#reply + 1] = who[2]
    reply[#reply + 1] = g[3]
  else
    -- Every record of the group is gone: no session is left to name, only index entries.
    local n = #g[3]
    if g[1] == 'idle' then
      idle = idle - n
    elseif g[1] == 'absolute' then
      absolute = absolute - n
    else
      tightened = tightened - n
    end
    repaired = repaired + n
  end
end
reply[1], reply[2], reply[3] = #entries / 2, kept, repaired
reply[4], reply[5], reply[6] = idle, absolute, tightened
return reply
