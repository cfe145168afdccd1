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
    super(`component exports ${exported ?? 'no failover:policy/policy interface'}; this host speaks ${spokenList(spoken)}`);
    this.name = 'ContractError';
    this.exported = exported;
    this.spoken = spoken;
  }
}

/** `['a', 'b', 'c']` as `a, b and c`. */
function spokenList(spoken) {
  return spoken.length < 2 ? spoken.join('') : `${spoken.slice(0, -1).join(', ')} and ${spoken.at(-1)}`;
}

/**
 * A function the running policy's contract lacks (`absorb` needs 0.3.0): `what` is the function,
 * `contract` the running policy's version, `needs` the first version that has it.
 */
export class Unsupported extends ContractError {
  constructor(what, contract, needs) {
    super(`failover:policy/policy@${contract}`, [contract]);
    this.message = `${what} needs a policy of contract ${needs}; the running policy speaks ${contract}`;
    this.name = 'Unsupported';
    Object.assign(this, { what, contract, needs });
  }
}

/** The policy refused a state (`merge`, `changes`, `fold`, `absorb`): its message names the field. */
export class StateError extends Error {
  constructor(message) {
    super(message);
    this.name = 'StateError';
  }
}

/** The state store could not be read or written; the policy goes on from its own state. */
export class StoreError extends Error {
  constructor(message, cause) {
    super(message, cause ? { cause } : undefined);
    this.name = 'StoreError';
  }
}

/** The store did not answer within its timeout, or cannot be reached (Redis down). */
export class StoreUnavailable extends StoreError {
  constructor(message, cause) {
    super(message, cause);
    this.name = 'StoreUnavailable';
  }
}

/** Another process held the file store's lock past `lockTimeoutMs`. */
export class StoreLocked extends StoreError {
  constructor(message) {
    super(message);
    this.name = 'StoreLocked';
  }
}

/** The stored base state is of a newer schema than this policy reads: it is left untouched. */
export class StoreRefused extends StoreError {
  constructor(message) {
    super(message);
    this.name = 'StoreRefused';
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
