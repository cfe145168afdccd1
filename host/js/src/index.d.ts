// Types of the failover-policy package. WIT u64 values (times, delays) are bigint.

export type Reason =
  | 'auth' | 'auth-permanent' | 'billing' | 'rate-limit' | 'quota-exhausted' | 'overloaded'
  | 'server-error' | 'timeout' | 'connection' | 'context-overflow' | 'model-not-found'
  | 'content-filter' | 'bad-request' | 'unknown';
export type TransportKind = 'timeout' | 'connection-refused' | 'dns' | 'tls' | 'reset' | 'other';

export interface Header { name: string; value: string }
export type HeadersLike = Headers | Record<string, string> | Array<[string, string]> | Header[];

export interface Route { provider: string; model: string; credential: string; position: number }

/** A failed attempt: an HTTP response (at most 64 KiB of its body is passed on) or a transport error. */
export type Failure =
  | { status: number; headers?: HeadersLike; body?: string | Uint8Array | ArrayBuffer }
  | { transport: TransportKind; message?: string };

export interface Classified {
  reason: Reason; retryable: boolean; rotateCredential: boolean; fallBack: boolean;
  retryAfterMs?: bigint; rule: string; message: string;
}

export interface CallProgress { attempts: number; waitedMs: bigint; routeRetries: number; leftPositions: number[] }

export interface CredentialStatus {
  id: string; state: 'available' | 'suspect' | 'cooling-down' | 'dead' | 'missing';
  untilMs?: bigint; lastReason?: Reason; lastError?: string;
}
export interface ProviderStatus {
  provider: string; model: string; position: number; routeUntilMs?: bigint;
  credentials: CredentialStatus[]; summary: string;
}
export interface FinalError { reason: Reason; message: string; retryAtMs?: bigint; providers: ProviderStatus[] }

export interface Action {
  kind: 'retry' | 'rotate' | 'fall-back' | 'wait' | 'give-up';
  route?: Route; delayMs: bigint; freshConnection: boolean; classified: Classified;
  progress: CallProgress; rule: string; why: string; error?: FinalError;
}

/** How a host-driven call starts (`startCall`). */
export interface Start { route: Route; delayMs: bigint; progress: CallProgress; rule: string; why: string }

export interface PolicyEvent {
  kind: 'notice' | 'fallback-activated' | 'primary-restored' | 'credential-cooldown' | 'credential-dead'
    | 'credential-restored' | 'route-cooldown' | 'retry-scheduled' | 'gave-up' | 'circuit-opened'
    | 'circuit-half-open' | 'circuit-closed' | 'retry-budget-exhausted' | 'state-restored' | 'state-dropped'
    | 'stream-event-dropped' | 'stream-resumed' | 'stream-failed';
  atMs: bigint; route?: Route; rule: string; message: string;
}

export interface Request {
  /** Path under the provider's base URL, e.g. `/chat/completions`. */
  path?: string; method?: string; headers?: HeadersLike;
  /** JSON text, bytes, or an object (serialised); its `model` is rewritten per route. */
  body?: string | Uint8Array | ArrayBuffer | object;
}

export interface Outbound {
  route: Route; url: string; method: string; headers: Header[]; body: Uint8Array;
  secretHeader: string; secretPrefix: string; connectTimeoutMs: bigint; readTimeoutMs: bigint;
  freshConnection: boolean;
}

export interface Attempt { route: Route; atMs: bigint; outcome: string; classified?: Classified; action?: Action }

/** How a call's answer ended, once its body was read to its end (or the call was cancelled). */
export interface Ended {
  /** The route that answered (undefined when the answer broke off). */
  route?: Route;
  attempts: Attempt[];
  /** Set when a committed answer broke off (a stream then ended with an error event; a whole answer's read failed). */
  error?: Error;
}

export interface Answer {
  /** Its body comes as the policy passes it on: nothing before the commit, then the answer as it arrives. */
  response: Response;
  route: Route;
  ended: Promise<Ended>;
}

export interface ResponseHead { status: number; headers: Header[] }

/** What came of a driven call's step (WIT `call-input`). */
export interface CallInput {
  kind: 'start' | 'head' | 'data' | 'end' | 'timed-out' | 'failed' | 'slept';
  head?: ResponseHead; data: Uint8Array; failure?: { kind: TransportKind; message: string };
}

/** What the host does next in a driven call (WIT `step`); every limit is folded into `withinMs`. */
export interface Step {
  kind: 'send' | 'read' | 'sleep' | 'done' | 'give-up';
  outbound?: Outbound; withinMs: bigint; commit?: ResponseHead; deliver: Uint8Array;
  error?: FinalError; attempts: Attempt[]; route?: Route; rule: string; why: string;
}

/** A driven call (contract 0.2.0): the guest decides each step; `close` frees it. */
export interface DrivenCall { next(input: CallInput): Step; close(): void }

/** What a carrier reports of one read of a body. */
export type Read = { data: Uint8Array } | { end: true } | { timedOut: true } | { failure: { transport: TransportKind; message?: string } };

/**
 * Where a driven call's sends go (default: HTTP over fetch). Each wait is bounded by `withinMs`;
 * promises reject only with the caller's abort reason.
 */
export interface Carrier {
  open(outbound: Outbound, secret: string | undefined, withinMs: number, signal?: AbortSignal): Promise<
    | { head: { status: number; statusText?: string; headers: Array<[string, string]> }; body: { read(withinMs: number): Promise<Read>; close(): void } }
    | { timedOut: true }
    | { failure: { transport: TransportKind; message?: string } }>;
}

export interface CallOptions {
  /** Cancels the attempt in flight and any wait; after the commit it errors the body. */
  signal?: AbortSignal;
  /** The caller's deadline for the whole call: the earlier of it and the config's `deadline_ms` bounds attempts and waits. */
  timeoutMs?: number | bigint;
  /** Used instead of the global fetch; receives a `dispatcher` for a fresh connection, which it may ignore. */
  fetch?: typeof fetch;
  /** Where sends go instead of fetch (a scripted carrier in virtual time, for scenarios). Not used by a 0.1.0 policy. */
  carrier?: Carrier;
}

export interface Clock {
  now(): number;
  /** Blocks (used only by the guest-driven `callSync`). */
  sleep(ms: number): void;
  wait(ms: number, signal?: AbortSignal): Promise<void>;
}
export class SystemClock implements Clock {
  now(): number; sleep(ms: number): void; wait(ms: number, signal?: AbortSignal): Promise<void>;
}
export class VirtualClock implements Clock {
  constructor(startMs?: number);
  ms: number;
  now(): number; advance(ms: number): void; sleep(ms: number): void; wait(ms: number): Promise<void>;
}

export type SyncSend = (outbound: Outbound, secret: string | undefined) =>
  { status: number; headers?: HeadersLike; body?: string | Uint8Array } | { transport: TransportKind; message?: string };

export interface LoadOptions {
  /** A snapshot from `snapshot()` (JSON text or object). */
  state?: string | object | null;
  /** `{credentialId: secret}`; default: each credential's `env` variable, or FAILOVER_KEY_<ID>. */
  secrets?: Record<string, string>;
  /** What the guest is told instead of fingerprints of the secrets (replays, tests). */
  credentials?: Array<{ id: string; fingerprint: string }>;
  /** A path or the bytes of a policy component; default: the bundled policy. */
  wasm?: string | URL | Uint8Array | ArrayBuffer;
  clock?: Clock;
  onEvent?: (event: PolicyEvent) => void;
  /** A synchronous send for `callSync` (the guest-driven loop). */
  send?: SyncSend;
  /** Entropy for jitter when the config has no `seed`. */
  seed?: number | bigint;
  /**
   * What a call gets when the policy fails (throws or traps; the host then restarts it from the
   * last good state and emits a 'host.policy-fault' notice). 'open' (default): `onFailure`
   * retries a provider-side failure (408, 429, 5xx, timeout, reset, connection-refused) once on
   * the same route after 1000 ms, else gives up; 'closed': gives up. `select`, `startCall`,
   * `call` and `callSync` throw a PolicyError, `snapshot` returns the last good state, and
   * `classify`, `prepare`, `check` and `version` throw a GuestTrap.
   *
   * The host cannot stop a policy that never returns: the transpiled guest runs on the calling
   * thread with no fuel or epoch deadline, so a looping guest blocks the event loop for good.
   * Memory is bounded only by the 4 GiB wasm limit, where a runaway guest traps.
   */
  failMode?: 'open' | 'closed';
  /**
   * `maxCrashes` (default 3) faults within `crashWindowMs` (default 60000) is a crash loop: the
   * host falls back to the policy a swap replaced ('host.policy-crash-loop'), or with none every
   * call fails closed until the next successful swap ('host.policy-closed').
   */
  maxCrashes?: number;
  crashWindowMs?: number;
  /** The largest config, state or request body handed to the policy (default 1 MiB). */
  maxPayloadBytes?: number;
  /**
   * The fleet's shared state (tests/fleet/README.md): loaded at start and merged with `state`,
   * refreshed at the start of calls (at most every `refreshMs`), appended to after every state
   * change without delaying the caller, flushed by `close()` and at the process's `beforeExit`
   * (`process.exit()` skips that; the file store then appends synchronously on 'exit').
   * @throws StoreRefused (from `load`) when the stored base is of a newer schema.
   */
  store?: FileStore | RedisStore;
}

/** The options every store shares (the spec's names, camelCase); the defaults are the spec's. */
export interface FleetOptions {
  /** The shortest time between two refreshes (250). */
  refreshMs?: number;
  /** After a store failure, refreshes and saves pause this long; what is owed goes out when it ends (5000). */
  retryMs?: number;
  /** A log holding more entries than this is folded into the base (256). */
  foldAfter?: number;
  /**
   * A fold forgets records of keys and routes with no sign of life for this long, and no Redis key
   * expires sooner (nor before the latest cooldown the policy names) (7 days; 0: never, no TTL).
   */
  forgetAfterMs?: number;
}
export interface FileStoreOptions extends FleetOptions {
  /** The longest wait for `<path>.lock` (250). */
  lockTimeoutMs?: number;
}
export interface RedisStoreOptions extends FleetOptions {
  /** The keys are `failover-policy:<name>`. */
  name: string;
  /** Every operation's bound on a connection (200). */
  timeoutMs?: number;
  /** Setting a connection up (TCP, TLS, AUTH), at most once per `retryMs` after a failure (1000). */
  connectTimeoutMs?: number;
  /** The CA (PEM) to trust for a `rediss://` URL. */
  caFile?: string;
}
/** `<path>` (base), `<path>.log` (one delta per line), `<path>.lock` (flock), shared by every host. */
export class FileStore {
  constructor(path: string, options?: FileStoreOptions);
  readonly where: string;
  readonly fleet: Required<FleetOptions>;
}
/** `failover-policy:<name>` (base), `:log` (a stream of deltas), `:folded`; `redis://` or `rediss://`, ACL user and password in the URL. */
export class RedisStore {
  constructor(url: string, options: RedisStoreOptions);
  readonly where: string;
  readonly fleet: Required<FleetOptions>;
}
/** A store from `redis://…`, `rediss://…` (options need `name`), `file:/abs/path` or a path. */
export function openStore(spec: string, options?: FileStoreOptions | RedisStoreOptions): FileStore | RedisStore;

/** One of `fold`'s states it could not read; `newer`: written by a newer policy (keep it for that one). */
export interface UnreadableState { index: number; message: string; newer: boolean }
/**
 * `changes`' result (WIT `delta`): the delta snapshot to append, and the latest cooldown or
 * open-circuit end in the appender's whole state (0n when none; 0n from a policy before 0.3.0):
 * a store keeps what it appends at least until then.
 */
export interface Delta { state: string; keepUntilMs: bigint }
/**
 * `fold`'s result (WIT `folded`): `keepUntilMs` is the latest cooldown or open-circuit end in
 * `state` (0n when none; 0n from a policy before 0.3.0): a store keeps the folded state at least until then.
 */
export interface Folded { state?: string; keepUntilMs: bigint; unreadable: UnreadableState[]; forgotten: number }

/** What the store did for this process. */
export interface StoreStats { saves: number; saveMs: number[]; refreshes: number; failures: number; folds: number }

export class Policy {
  /** @throws ContractError for a component of a contract version this host does not speak. */
  static load(config: object | string, options?: LoadOptions): Promise<Policy>;
  onEvent(listener: (event: PolicyEvent) => void): () => void;
  /** @throws PolicyError when no route is usable (per provider why, and when one will be). */
  select(): Route;
  /**
   * The start of a call the host drives: send on `route` after `delayMs`, and pass `progress` to
   * the first `onFailure`. @throws PolicyError with the final error when no route will do.
   */
  startCall(): Start;
  onFailure(route: Route, failure: Failure, progress?: CallProgress): Action;
  onSuccess(route: Route): void;
  prepare(route: Route, request: Request): Outbound;
  classify(provider: string, failure: Failure): Classified;
  /** Whether a response is an answer: a 2xx whose body is no error (a stream's error event, an error document). */
  succeeded(response: { status: number; headers?: HeadersLike; body?: Uint8Array | ArrayBuffer | string }): boolean;
  snapshot(): string;
  check(): { ok: boolean; findings: string[] };
  version(): { policy: string; schema: number };
  /** The contract version the running policy speaks: '0.1.0', '0.2.0' (deployed older builds) or '0.3.0'. */
  readonly contract: '0.1.0' | '0.2.0' | '0.3.0';
  /** Merges peers' state into the running engine. @throws Unsupported before contract 0.3.0; StateError for an unreadable state. */
  absorb(state: string | object): void;
  /** Two snapshots merged by the policy. @throws StateError */
  merge(a: string, b: string): string;
  /** What `now` holds that `since` does not, or undefined; before 0.3.0: the whole `now` when its text differs (keepUntilMs 0n). @throws StateError */
  changes(since: string, now: string): Delta | undefined;
  /** Many states folded into one, forgetting records idle for `forgetAfterMs` (0: none); before 0.3.0: pairwise merges, nothing forgotten. */
  fold(states: string[], nowMs: number | bigint, forgetAfterMs: number | bigint): Folded;
  /** Flushes what is owed to the store (one attempt, bounded) and closes it. */
  close(): Promise<void>;
  /** Undefined without a store. */
  readonly storeStats: StoreStats | undefined;
  setSecrets(secrets?: Record<string, string>): void;
  setCredentials(credentials: Array<{ id: string; fingerprint: string }>): void;
  /**
   * Resolves once the policy committed to an answer (nothing of a failed attempt reaches the
   * caller). @throws PolicyError with the policy's final message; PayloadTooLarge for a body
   * over the limit; the signal's reason when it aborts.
   */
  call(request: Request, options?: CallOptions): Promise<Answer>;
  /** A driven call to carry out oneself; undefined for a 0.1.0 policy. */
  begin(request: Request, options?: { timeoutMs?: number | bigint }): DrivenCall | undefined;
  callSync(request: Request): { response: { status: number; headers: Header[]; body: Uint8Array }; route: Route; attempts: Attempt[] };
  /**
   * @throws SwapError and keeps the current policy when the new one does not validate (or speaks
   * a contract version this host does not, naming both). Each
   * distinct build is transpiled once per process; swapping back to the build the current one
   * replaced reuses that build's instance (a restore from the snapshot, under 1 ms).
   */
  swap(wasm: string | URL | Uint8Array | ArrayBuffer): Promise<{ policy: string; schema: number }>;
}

export function failoverFetch(policy: Policy, options?: { prefix?: string; timeoutMs?: number | bigint }): typeof fetch;

export class ConfigError extends Error { field: string }
export class PolicyError extends Error {
  reason: Reason; retryAtMs?: bigint; providers: ProviderStatus[]; attempts: Attempt[];
}
/** A component built for a contract version this host does not speak (`Policy.load`; a swap throws SwapError). */
export class ContractError extends Error { exported?: string; spoken: string[] }
export class SwapError extends Error {}
/** The policy failed in a call with no safe default; the host restored the last good state. */
export class GuestTrap extends PolicyError { cause: unknown }
/** A config, state or body over `maxPayloadBytes`, refused before the call. */
export class PayloadTooLarge extends PolicyError { what: string; size: number; limit: number }
/** A function the running policy's contract lacks (`absorb` needs 0.3.0). */
export class Unsupported extends ContractError { what: string; contract: string; needs: string }
/** A state the policy could not read (`merge`, `changes`, `fold`, `absorb`); the message names the field. */
export class StateError extends Error {}
/** The store could not be read or written; decisions go on from memory. */
export class StoreError extends Error {}
/** No answer within the store's timeout, or it cannot be reached. */
export class StoreUnavailable extends StoreError {}
/** The file store's lock stayed taken past `lockTimeoutMs`. */
export class StoreLocked extends StoreError {}
/** The stored base is of a newer schema than this policy reads; it is left untouched. */
export class StoreRefused extends StoreError {}

export function defaultEnvName(credentialId: string): string;
export function fingerprint(secret: string): string;
