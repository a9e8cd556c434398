// Lua run by Redis: every script reads Redis's own clock, so the hosts' clocks do not matter for
// buckets or reservations. Quota periods are computed by the host (time zones need Intl) and passed
// as four boundaries (previous start, start, end, next end); the script picks the period that holds
// Redis's time, so a host clock that is off by less than a period still charges the right one.
// The numbers mirror the memory store: same tolerance, same rounding.

const prelude = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
local tolerance = 1e-9

local function exact(number)
  return string.format('%.17g', number)
end

local function millisecondsUntil(missing, rate)
  return math.max(0, math.ceil(missing / rate - tolerance))
end

local function readBucket(key, rate, burst)
  local state = redis.call('HMGET', key, 'tokens', 'updatedAt')
  if not state[1] then
    return burst
  end
  return math.min(burst, tonumber(state[1]) + math.max(0, now - tonumber(state[2])) * rate)
end

-- A missing key is a full bucket; a key expires when its bucket would be full again.
local function writeBucket(key, tokens, rate, burst)
  if tokens >= burst then
    redis.call('DEL', key)
  else
    redis.call('HSET', key, 'tokens', exact(tokens), 'updatedAt', exact(now))
    redis.call('PEXPIRE', key, math.max(1, millisecondsUntil(burst - tokens, rate)))
  end
end

local function choosePeriod(first)
  local boundaries = {}
  for index = 0, 3 do
    boundaries[index] = tonumber(ARGV[first + index])
  end
  if now < boundaries[1] then
    return boundaries[0], boundaries[1]
  elseif now < boundaries[2] then
    return boundaries[1], boundaries[2]
  end
  return boundaries[2], boundaries[3]
end

-- Reservations are members "<estimate>:<id>" of a sorted set scored by their expiry. The hash holds
-- the period, the settled usage and the sum of the live reservations.
local function readQuota(quotaKey, reservationsKey, periodStart)
  local stored = redis.call('HMGET', quotaKey, 'periodStart', 'used', 'reserved')
  if tonumber(stored[1]) ~= periodStart then
    redis.call('DEL', reservationsKey)
    return 0, 0
  end
  local used, reserved = tonumber(stored[2]), tonumber(stored[3])
  local lapsed = redis.call('ZRANGEBYSCORE', reservationsKey, '-inf', now)
  for _, member in ipairs(lapsed) do
    reserved = reserved - tonumber(string.match(member, '^[^:]+'))
  end
  if #lapsed > 0 then
    redis.call('ZREMRANGEBYSCORE', reservationsKey, '-inf', now)
    redis.call('HSET', quotaKey, 'reserved', reserved)
  end
  return used, reserved
end

local function writeQuota(quotaKey, reservationsKey, periodStart, periodEnd, used, reserved)
  redis.call('HSET', quotaKey, 'periodStart', periodStart, 'used', used, 'reserved', reserved)
  redis.call('PEXPIREAT', quotaKey, periodEnd)
  redis.call('PEXPIREAT', reservationsKey, periodEnd)
end
`;

/**
 * KEYS: request bucket, token bucket, quota hash, quota reservations.
 * ARGV: 1-3 request rate per ms (0: no bucket), burst, cost; 4-6 the same for tokens;
 * 7 quota limit (-1: no quota), 8 reservation member, 9 estimate, 10 reservation ttl ms,
 * 11-14 period boundaries.
 * Returns: allowed; per bucket allowed and tokens left (exact string); quota allowed, used,
 * reserved, milliseconds to the period's end, period start and end; reservation expiry.
 */
export const admitScript = `${prelude}
local allowed = true
local buckets = {}
for index = 0, 1 do
  local rate = tonumber(ARGV[index * 3 + 1])
  if rate > 0 then
    local burst, cost = tonumber(ARGV[index * 3 + 2]), tonumber(ARGV[index * 3 + 3])
    local tokens = readBucket(KEYS[index + 1], rate, burst)
    local bucket = { key = KEYS[index + 1], rate = rate, burst = burst, cost = cost, tokens = tokens }
    bucket.allowed = tokens + tolerance >= cost
    allowed = allowed and bucket.allowed
    buckets[index + 1] = bucket
  end
end

local limit, estimate = tonumber(ARGV[7]), tonumber(ARGV[9])
local quotaAllowed, used, reserved, periodStart, periodEnd = true, 0, 0, 0, 0
if limit >= 0 then
  periodStart, periodEnd = choosePeriod(11)
  used, reserved = readQuota(KEYS[3], KEYS[4], periodStart)
  quotaAllowed = used + reserved + estimate <= limit
  allowed = allowed and quotaAllowed
end

local expiresAt = math.floor(now + tonumber(ARGV[10]))
if allowed then
  for _, bucket in pairs(buckets) do
    bucket.tokens = math.max(0, bucket.tokens - bucket.cost)
    writeBucket(bucket.key, bucket.tokens, bucket.rate, bucket.burst)
  end
  if limit >= 0 then
    reserved = reserved + estimate
    redis.call('ZADD', KEYS[4], expiresAt, ARGV[8])
    writeQuota(KEYS[3], KEYS[4], periodStart, periodEnd, used, reserved)
  end
end

local reply = { allowed and 1 or 0 }
for index = 1, 2 do
  local bucket = buckets[index]
  if bucket then
    table.insert(reply, bucket.allowed and 1 or 0)
    table.insert(reply, exact(bucket.tokens))
  else
    table.insert(reply, 0)
    table.insert(reply, '0')
  end
end
table.insert(reply, quotaAllowed and 1 or 0)
table.insert(reply, used)
table.insert(reply, reserved)
table.insert(reply, math.max(0, math.ceil(periodEnd - now)))
table.insert(reply, periodStart)
table.insert(reply, periodEnd)
table.insert(reply, expiresAt)
return reply
`;

/**
 * KEYS: token bucket, quota hash, quota reservations.
 * ARGV: 1-2 token rate per ms (0: no bucket), burst; 3 estimate; 4 actual tokens;
 * 5 quota (1 or 0); 6 reservation member; 7-10 period boundaries.
 */
export const settleScript = `${prelude}
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local estimate, actual = tonumber(ARGV[3]), tonumber(ARGV[4])
if rate > 0 then
  local tokens = readBucket(KEYS[1], rate, burst)
  -- An overrun is charged as debt, but never more than one burst of it.
  tokens = math.max(-burst, math.min(burst, tokens - (actual - estimate)))
  writeBucket(KEYS[1], tokens, rate, burst)
end
if ARGV[5] == '1' then
  local periodStart, periodEnd = choosePeriod(7)
  local used, reserved = readQuota(KEYS[2], KEYS[3], periodStart)
  if redis.call('ZREM', KEYS[3], ARGV[6]) == 1 then
    reserved = reserved - estimate
  end
  writeQuota(KEYS[2], KEYS[3], periodStart, periodEnd, used + actual, reserved)
end
return 1
`;

/**
 * KEYS: quota hash, quota reservations. ARGV: 1-4 period boundaries.
 * Returns: used, reserved, milliseconds to the period's end, period start and end.
 */
export const usageScript = `${prelude}
local periodStart, periodEnd = choosePeriod(1)
local used, reserved = readQuota(KEYS[1], KEYS[2], periodStart)
return { used, reserved, math.max(0, math.ceil(periodEnd - now)), periodStart, periodEnd }
`;
