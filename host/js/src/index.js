export { Policy } from './policy.js';
export { failoverFetch } from './fetch.js';
export { ConfigError, ContractError, PolicyError, SwapError, GuestTrap, PayloadTooLarge } from './errors.js';
export { SystemClock, VirtualClock } from './clock.js';
export { defaultEnvName, fingerprint } from './secrets.js';
