export { Policy } from './policy.js';
export { failoverFetch } from './fetch.js';
export {
  ConfigError, ContractError, PolicyError, SwapError, GuestTrap, PayloadTooLarge, Unsupported, StateError,
  StoreError, StoreUnavailable, StoreLocked, StoreRefused,
} from './errors.js';
export { SystemClock, VirtualClock } from './clock.js';
export { defaultEnvName, fingerprint } from './secrets.js';
export { FileStore } from './file-store.js';
export { RedisStore } from './redis-store.js';
export { openStore } from './open-store.js';
