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

-- An allowance (a token quota or a money budget) per period: a hash holding the period's start,
-- the settled amount ('used') and the sum of the live reservations ('reserved'), and a sorted set
-- of reservations, members "<amount>:<id>" scored by their expiry. Amounts move only by HINCRBY
-- with the integer text the host sent: Lua prints numbers with 14 digits, which would round
-- larger amounts (nano-dollars). A new period starts from an empty hash.
local function readAllowance(hashKey, reservationsKey, periodStart)
  local stored = redis.call('HMGET', hashKey, 'periodStart', 'used', 'reserved')
  if tonumber(stored[1]) ~= periodStart then
    redis.call('DEL', hashKey, reservationsKey)
    return 0, 0
  end
  local reserved = tonumber(stored[3]) or 0
  local lapsed = redis.call('ZRANGEBYSCORE', reservationsKey, '-inf', now)
  if #lapsed > 0 then
    for _, member in ipairs(lapsed) do
      local amount = string.match(member, '^[^:]+')
      if amount ~= '0' then
        reserved = redis.call('HINCRBY', hashKey, 'reserved', '-' .. amount)
      end
    end
    redis.call('ZREMRANGEBYSCORE', reservationsKey, '-inf', now)
  end
  return tonumber(stored[2]) or 0, reserved
end

local function keepPeriod(hashKey, reservationsKey, periodStart, periodEnd)
  redis.call('HSET', hashKey, 'periodStart', periodStart)
  redis.call('PEXPIREAT', hashKey, periodEnd)
  redis.call('PEXPIREAT', reservationsKey, periodEnd)
end

local function reserve(hashKey, reservationsKey, periodStart, periodEnd, member, amount, expiresAt)
  local reserved = tonumber(redis.call('HGET', hashKey, 'reserved')) or 0
  if amount ~= '0' then
    reserved = redis.call('HINCRBY', hashKey, 'reserved', amount)
  end
  redis.call('ZADD', reservationsKey, expiresAt, member)
  keepPeriod(hashKey, reservationsKey, periodStart, periodEnd)
  return reserved
end

-- The reservation becomes usage; returns the settled amount and the period it counted in.
local function settleAllowance(hashKey, reservationsKey, first, member, reservedAmount, actual)
  local periodStart, periodEnd = choosePeriod(first)
  local used = readAllowance(hashKey, reservationsKey, periodStart)
  if redis.call('ZREM', reservationsKey, member) == 1 and reservedAmount ~= '0' then
    redis.call('HINCRBY', hashKey, 'reserved', '-' .. reservedAmount)
  end
  if actual ~= '0' then
    used = redis.call('HINCRBY', hashKey, 'used', actual)
  end
  keepPeriod(hashKey, reservationsKey, periodStart, periodEnd)
  return used, periodStart, periodEnd
end
`;

/**
 * KEYS: request bucket, token bucket, quota hash and reservations, budget hash and reservations.
 * ARGV: 1-3 request rate per ms (0: no bucket), burst, cost; 4-6 the same for tokens;
 * 7 quota limit (-1: no quota), 8 quota reservation member, 9 estimate, 10 reservation ttl ms,
 * 11-14 quota period boundaries; 15 budget (1 or 0), 16 budget limit (-1: none),
 * 17 budget reservation member, 18 cost, 19-22 budget period boundaries.
 * Returns: allowed; per bucket allowed and tokens left (exact string); quota allowed, used,
 * reserved, milliseconds to the period's end, period start and end; reservation expiry; the
 * same six for the budget.
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

local function checkAllowance(hashKey, reservationsKey, limit, amount, first)
  local check = { allowed = true }
  check.periodStart, check.periodEnd = choosePeriod(first)
  check.used, check.reserved = readAllowance(hashKey, reservationsKey, check.periodStart)
  check.allowed = limit < 0 or check.used + check.reserved + tonumber(amount) <= limit
  return check
end

local quota, budget
if tonumber(ARGV[7]) >= 0 then
  quota = checkAllowance(KEYS[3], KEYS[4], tonumber(ARGV[7]), ARGV[9], 11)
  allowed = allowed and quota.allowed
end
if ARGV[15] == '1' then
  budget = checkAllowance(KEYS[5], KEYS[6], tonumber(ARGV[16]), ARGV[18], 19)
  allowed = allowed and budget.allowed
end

local expiresAt = math.floor(now + tonumber(ARGV[10]))
if allowed then
  for _, bucket in pairs(buckets) do
    bucket.tokens = math.max(0, bucket.tokens - bucket.cost)
    writeBucket(bucket.key, bucket.tokens, bucket.rate, bucket.burst)
  end
  if quota then
    quota.reserved = reserve(KEYS[3], KEYS[4], quota.periodStart, quota.periodEnd, ARGV[8], ARGV[9], expiresAt)
  end
  if budget then
    budget.reserved = reserve(KEYS[5], KEYS[6], budget.periodStart, budget.periodEnd, ARGV[17], ARGV[18], expiresAt)
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
local function replyAllowance(check)
  check = check or { allowed = true, used = 0, reserved = 0, periodStart = 0, periodEnd = 0 }
  table.insert(reply, check.allowed and 1 or 0)
  table.insert(reply, check.used)
  table.insert(reply, check.reserved)
  table.insert(reply, math.max(0, math.ceil(check.periodEnd - now)))
  table.insert(reply, check.periodStart)
  table.insert(reply, check.periodEnd)
end
replyAllowance(quota)
table.insert(reply, expiresAt)
replyAllowance(budget)
return reply
`;

/**
 * KEYS: token bucket, quota hash and reservations, budget hash and reservations.
 * ARGV: 1-2 token rate per ms (0: no bucket), burst; 3 estimate; 4 actual tokens;
 * 5 quota (1 or 0); 6 quota reservation member; 7-10 quota period boundaries; 11 budget (1 or 0);
 * 12 budget reservation member; 13 reserved cost; 14 actual cost; 15-18 budget period
 * boundaries; 19 and on: the budget's thresholds, ascending.
 * Returns: the budget's spend, period start and end, then each threshold this settlement is the
 * first to reach in the period.
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
  settleAllowance(KEYS[2], KEYS[3], 7, ARGV[6], ARGV[3], ARGV[4])
end
local reply = { 0, 0, 0 }
if ARGV[11] == '1' then
  local spent, periodStart, periodEnd = settleAllowance(KEYS[4], KEYS[5], 15, ARGV[12], ARGV[13], ARGV[14])
  reply = { spent, periodStart, periodEnd }
  for index = 19, #ARGV do
    -- The hash starts empty each period, so each threshold is claimed once per period.
    if spent >= tonumber(ARGV[index]) and redis.call('HSETNX', KEYS[4], 'reached:' .. ARGV[index], 1) == 1 then
      table.insert(reply, ARGV[index])
    end
  end
end
return reply
`;

/**
 * KEYS: a quota's or budget's hash and reservations. ARGV: 1-4 period boundaries.
 * Returns: used, reserved, milliseconds to the period's end, period start and end.
 */
export const usageScript = `${prelude}
local periodStart, periodEnd = choosePeriod(1)
local used, reserved = readAllowance(KEYS[1], KEYS[2], periodStart)
return { used, reserved, math.max(0, math.ceil(periodEnd - now)), periodStart, periodEnd }
`;
