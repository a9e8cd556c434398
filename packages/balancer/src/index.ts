export {
  type Attempt,
  type Balancer,
  type BalancerOptions,
  type BalancerTarget,
  createBalancer,
  type PickOptions,
  type Strategy,
  strategies,
} from "./balancer.js";
export {
  type BreakerOptions,
  type BreakerStatus,
  type CircuitBreaker,
  createCircuitBreaker,
  type Outcome,
  type ResolvedBreakerOptions,
  resolveBreakerOptions,
  type TargetState,
} from "./breaker.js";
export {
  createRedisCircuitBreaker,
  type RedisBreakerOptions,
  type RedisScriptClient,
} from "./redis-breaker.js";
