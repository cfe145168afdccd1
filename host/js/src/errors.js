// Errors a caller can branch on; messages are the policy's own, written for the user.

/** A bad config or snapshot: `field` is the JSON path the guest named. */
export class ConfigError extends Error {
  constructor({ field, message }) {
    super(`${field}: ${message}`);
    this.name = 'ConfigError';
    this.field = field;
  }
}

/** A call the policy gave up on (or a select with no usable route). */
export class PolicyError extends Error {
  constructor(error, attempts = []) {
    super(error.message);
    this.name = 'PolicyError';
    this.reason = error.reason;
    this.retryAtMs = error.retryAtMs;
    this.providers = error.providers ?? [];
    this.attempts = attempts;
  }
}

/**
 * A component built for a contract version this host does not speak: `exported` is its
 * `failover:policy/policy` export (undefined when it has none), `spoken` the versions spoken.
 */
export class ContractError extends Error {
  constructor(exported, spoken) {
    super(`component exports ${exported ?? 'no failover:policy/policy interface'}; this host speaks ${spoken.join(' and ')}`);
    this.name = 'ContractError';
    this.exported = exported;
    this.spoken = spoken;
  }
}

/** A swap that was refused; the old policy stays in place. */
export class SwapError extends Error {
  constructor(message, cause) {
    super(`swap refused, the current policy stays: ${message}`, cause ? { cause } : undefined);
    this.name = 'SwapError';
  }
}

/** The policy component failed (trapped or threw); the host restored the last good state. */
export class GuestTrap extends PolicyError {
  constructor(message, cause) {
    super({ reason: 'unknown', message });
    this.name = 'GuestTrap';
    this.cause = cause;
  }
}

/** A config, state or body over the payload limit, refused before it reached the policy. */
export class PayloadTooLarge extends PolicyError {
  constructor(what, size, limit) {
    super({ reason: 'bad-request', message: `${what} is ${size} bytes, over the policy's payload limit of ${limit} bytes` });
    this.name = 'PayloadTooLarge';
    Object.assign(this, { what, size, limit });
  }
}
