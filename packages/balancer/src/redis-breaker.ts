import {
  type BreakerOptions,
  type CircuitBreaker,
  closedState,
  resolveBreakerOptions,
  type TargetState,
} from "./breaker.js";

/** The part of an ioredis client (`Redis` or `Cluster`) the breaker uses. */
export interface RedisScriptClient {
  defineCommand(name: string, definition: { lua: string; numberOfKeys?: number }): void;
}

export interface RedisBreakerOptions extends BreakerOptions {
  /** An ioredis client, shared with others or not; the breaker never closes it. */
  redis: RedisScriptClient;
  /**
   * Prefix of every key (default "aigw:cb:"), then `{targets}:` and the target id: one hash
   * tag for all, so a flush is one script call on Redis Cluster too.
   */
  keyPrefix?: string;
  /** How often outcomes are sent, and states read back, in milliseconds (250). */
  flushIntervalMs?: number;
  /** The longest a flush waits for Redis, in milliseconds (500). */
  commandTimeoutMs?: number;
  /**
   * A probe slot claimed by an instance that never reported (it stopped) is freed after this
   * long, in milliseconds (60,000).
   */
  probeTimeoutMs?: number;
  /** Told of every failed Redis call; the breaker then fails open. Must not throw. */
  onStoreError?: (error: Error) => void;
}

// Transitions, the same as the memory breaker's: outcome codes are "s" / "f<retryAfterMs>"
// (a success or failure), "S" / "F<retryAfterMs>" (a probe's), "r" (a probe slot freed).
const transitions = `
local function cooldown(trips, retry)
  local doubled = tonumber(ARGV[5]) * 2 ^ math.min(math.max(trips - 1, 0), 30)
  return math.max(math.min(doubled, tonumber(ARGV[6])), retry)
end
local function now_ms()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end
local fields = {'status', 'until', 'trips', 'ws', 'ok', 'fail', 'run', 'out', 'pok', 'pt'}
local function load(key, now)
  local v = redis.call('HMGET', key, unpack(fields))
  local s = {status = v[1] or 'closed', till = tonumber(v[2]) or 0, trips = tonumber(v[3]) or 0,
    ws = tonumber(v[4]) or now, ok = tonumber(v[5]) or 0, fail = tonumber(v[6]) or 0,
    run = tonumber(v[7]) or 0, out = tonumber(v[8]) or 0, pok = tonumber(v[9]) or 0,
    pt = tonumber(v[10]) or 0}
  if s.status == 'open' and now >= s.till then
    s.status = 'half_open'; s.out = 0; s.pok = 0
  end
  return s
end
local function save(key, s)
  redis.call('HSET', key, 'status', s.status, 'until', s.till, 'trips', s.trips, 'ws', s.ws,
    'ok', s.ok, 'fail', s.fail, 'run', s.run, 'out', s.out, 'pok', s.pok, 'pt', s.pt)
  redis.call('PEXPIRE', key, tonumber(ARGV[6]) + 2 * tonumber(ARGV[3]) + tonumber(ARGV[8]))
end
local function open(s, now, retry)
  s.trips = s.trips + 1; s.status = 'open'; s.till = now + cooldown(s.trips, retry)
  s.out = 0; s.pok = 0; s.tripped = (s.tripped or 0) + 1
end
`;

// ARGV: failureRatio, minimumRequests, windowMs, consecutiveFailures, cooldownMs,
// maxCooldownMs, probes, probeTimeoutMs, then one outcome list per key.
const flushScript = `${transitions}
local now = now_ms()
local states = {}
for i, key in ipairs(KEYS) do
  local s = load(key, now)
  for code in string.gmatch(ARGV[8 + i], '[^,]+') do
    local kind = string.sub(code, 1, 1)
    local retry = tonumber(string.sub(code, 2)) or 0
    local failed = kind == 'f' or kind == 'F'
    if (kind == 'S' or kind == 'F' or kind == 'r') and s.out > 0 then s.out = s.out - 1 end
    if kind == 'r' then
    elseif s.status == 'open' then
      if failed then s.till = math.max(s.till, now + cooldown(s.trips, retry)) end
    elseif s.status == 'half_open' then
      if failed then open(s, now, retry)
      elseif kind == 'S' then
        s.pok = s.pok + 1
        if s.pok >= tonumber(ARGV[7]) then
          s.status = 'closed'; s.till = 0; s.trips = 0; s.ws = now; s.ok = 0; s.fail = 0
          s.run = 0; s.out = 0; s.pok = 0
        end
      end
    else
      if now - s.ws >= tonumber(ARGV[3]) then s.ws = now; s.ok = 0; s.fail = 0 end
      if failed then
        s.fail = s.fail + 1; s.run = s.run + 1
        local total = s.ok + s.fail
        if s.run >= tonumber(ARGV[4]) or
          (total >= tonumber(ARGV[2]) and s.fail / total >= tonumber(ARGV[1])) then
          open(s, now, retry)
        end
      else
        s.ok = s.ok + 1; s.run = 0
      end
    end
  end
  if ARGV[8 + i] ~= '' then save(key, s) end
  states[i] = {s.status, tostring(s.till), tostring(s.trips), tostring(s.tripped or 0)}
end
return {tostring(now), states}
`;

const claimScript = `${transitions}
local now = now_ms()
local s = load(KEYS[1], now)
if s.status ~= 'half_open' then return 0 end
if s.out >= tonumber(ARGV[7]) and now - s.pt < tonumber(ARGV[8]) then return 0 end
if s.out >= tonumber(ARGV[7]) then s.out = 0 end
s.out = s.out + 1; s.pt = now
save(KEYS[1], s)
return 1
`;

type Script = (...args: Array<string | number>) => Promise<unknown>;

/**
 * A circuit breaker whose state every instance on the same Redis shares. Picks read a local
 * copy, never Redis: outcomes are sent in batches every `flushIntervalMs`, and each batch
 * brings the states back (so they are at most about that stale); claiming a half-open
 * target's probe slot is the one atomic call on the request path. When Redis fails, the
 * breaker fails open: targets count as closed until it answers again.
 */
export function createRedisCircuitBreaker(options: RedisBreakerOptions): CircuitBreaker {
  const resolved = resolveBreakerOptions(options);
  const { redis, onStoreError } = options;
  if (typeof redis?.defineCommand !== "function") {
    throw new TypeError("redis must be an ioredis client");
  }
  const prefix = options.keyPrefix ?? "aigw:cb:";
  if (/[{}]/.test(prefix)) throw new TypeError("keyPrefix must not contain braces");
  const keyOf = (id: string) => `${prefix}{targets}:${id}`;
  const flushIntervalMs = options.flushIntervalMs ?? 250;
  const commandTimeoutMs = options.commandTimeoutMs ?? 500;
  const probeTimeoutMs = options.probeTimeoutMs ?? 60_000;
  const settings = [
    resolved.failureRatio,
    resolved.minimumRequests,
    resolved.windowMs,
    resolved.consecutiveFailures,
    resolved.cooldownMs,
    resolved.maxCooldownMs,
    resolved.probes,
    probeTimeoutMs,
  ];
  redis.defineCommand("aigwBreakerFlush", { lua: flushScript });
  redis.defineCommand("aigwBreakerClaim", { lua: claimScript, numberOfKeys: 1 });
  const commands = redis as unknown as { aigwBreakerFlush: Script; aigwBreakerClaim: Script };

  const states = new Map<string, Readonly<TargetState>>();
  let pending = new Map<string, string[]>();
  /** Redis's clock minus ours, so cooldowns end on time whatever the local clock says. */
  let clockOffset = 0;
  let flushing: Promise<void> | undefined;

  function withinTime<T>(call: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`Redis did not answer within ${commandTimeoutMs} ms`)),
        commandTimeoutMs,
      );
    });
    return Promise.race([call, timeout]).finally(() => clearTimeout(timer));
  }

  function failedOpen(error: unknown) {
    states.clear();
    onStoreError?.(error instanceof Error ? error : new Error(String(error)));
  }

  async function flush() {
    const ids = [...new Set([...states.keys(), ...pending.keys()])];
    if (ids.length === 0) return;
    const outcomes = pending;
    pending = new Map();
    try {
      const reply = (await withinTime(
        commands.aigwBreakerFlush(
          ids.length,
          ...ids.map(keyOf),
          ...settings,
          ...ids.map((id) => outcomes.get(id)?.join(",") ?? ""),
        ),
      )) as [string, [string, string, string, string][]];
      const [redisNow, read] = reply;
      clockOffset = Number(redisNow) - Date.now();
      ids.forEach((id, index) => {
        const [status, until, trips, tripped] = read[index] ?? ["closed", "0", "0", "0"];
        for (let count = Number(tripped); count > 0; count--) options.onTrip?.(id);
        states.set(id, {
          status: status as TargetState["status"],
          until: Number(until) - clockOffset,
          trips: Number(trips),
        });
      });
    } catch (error) {
      failedOpen(error);
    }
  }

  const timer = setInterval(() => {
    flushing ??= flush().finally(() => {
      flushing = undefined;
    });
  }, flushIntervalMs);
  timer.unref();

  function add(id: string, code: string) {
    let list = pending.get(id);
    if (!list) {
      list = [];
      pending.set(id, list);
    }
    // A target failing thousands of times between two flushes needs only its latest outcomes.
    if (list.length < 1_000) list.push(code);
    if (!states.has(id)) states.set(id, closedState);
  }

  return {
    options: resolved,
    state(id) {
      const state = states.get(id);
      if (!state) {
        // Read at the next flush: another instance may have tripped it.
        states.set(id, closedState);
        return closedState;
      }
      if (state.status === "open" && Date.now() >= state.until) {
        return { status: "half_open", until: 0, trips: state.trips };
      }
      return state;
    },
    async claimProbe(id) {
      try {
        const claimed = await withinTime(commands.aigwBreakerClaim(keyOf(id), ...settings));
        return claimed === 1;
      } catch (error) {
        failedOpen(error);
        return true;
      }
    },
    record(id, outcome, probe) {
      const kind = outcome.ok ? "s" : "f";
      const retry = outcome.ok ? "" : `${Math.max(0, Math.round(outcome.retryAfterMs ?? 0))}`;
      add(id, `${probe ? kind.toUpperCase() : kind}${retry}`);
    },
    release(id) {
      add(id, "r");
    },
    async close() {
      clearInterval(timer);
      await flushing;
      await flush();
    },
  };
}
