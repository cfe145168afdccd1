// The one place that knows the component's JS shape: transpiling, instantiating, and
// encoding/decoding WIT values (camelCase, u64 as BigInt, enums as strings, options undefined).
import { createHash } from 'node:crypto';
import { compileFunction } from 'node:vm';
import { transpileBytes } from '@bytecodealliance/jco-transpile';
import { WASIShim } from '@bytecodealliance/preview2-shim/instantiation';
import { ContractError } from './errors.js';

/**
 * The contract versions this host speaks, oldest first. Each keeps every type and function of
 * the one before: 0.2.0 adds the driven call (`Policy.begin`), 0.3.0 what a fleet sharing a store
 * needs (`engine.absorb`, `changes`, `fold`). All load through the same glue: only the version
 * in the export key differs (jco's import keys carry none).
 */
export const CONTRACTS = ['0.1.0', '0.2.0', '0.3.0'];

/** Whether contract `contract` has what `since` added (versions compare as in CONTRACTS). */
export function speaks(contract, since) {
  return CONTRACTS.indexOf(contract) >= CONTRACTS.indexOf(since);
}
const POLICY = 'failover:policy/policy';
const HOST = 'failover:policy/host';

// Transpiled modules are never unloaded by V8, so each distinct wasm is transpiled and compiled
// once per process: swapping back to a seen wasm reuses it (memory stays bounded).
const compiled = new Map();

/** Transpiles and compiles a component once per content hash. */
export async function compile(bytes) {
  const wasm = toBytes(bytes);
  const hash = createHash('sha256').update(wasm).digest('hex');
  const hit = compiled.get(hash);
  if (hit) return hit;
  let out;
  try {
    out = await transpileBytes(wasm, { name: 'policy', instantiation: 'sync' });
  } catch (e) {
    throw new Error(`not a policy component: ${String(e?.message ?? e).split('\n')[0]}`);
  }
  const files = new Map(Object.entries(out.files));
  const exportName = out.exports?.map(([name]) => name).find((name) => name.split('@')[0] === POLICY);
  const contract = exportName?.split('@')[1];
  if (!CONTRACTS.includes(contract)) throw new ContractError(exportName, CONTRACTS);
  const modules = new Map();
  for (const [name, data] of files) {
    if (name.endsWith('.wasm')) modules.set(name, new WebAssembly.Module(/** @type {BufferSource} */ (data)));
  }
  const { source, rewrites } = fasterBindings(Buffer.from(files.get('policy.js')).toString('utf8'));
  const copy = ownCopies(source, hash);
  let instantiateFn = copy && ((getCoreModule, imports) => copy()(getCoreModule, imports));
  if (!instantiateFn) {
    // The generated JS imports nothing in sync mode, so it loads from a data: URL, no file written.
    const mod = await import(`data:text/javascript;base64,${Buffer.from(source).toString('base64')}`);
    instantiateFn = mod.instantiate;
  }
  const entry = {
    hash, contract, exportName, instantiate: instantiateFn, modules, rewrites, copies: copy ? 'per-instance' : 'shared',
  };
  compiled.set(hash, entry);
  return entry;
}

// Each instance runs its own copy of the generated JS. The bindings define their classes and
// closures inside `instantiate`, so with one copy every instance brings new object shapes to the
// same code, whose inline caches V8 shares across instances: once a second instance of a build
// had run (a second Policy, a restart after a fault), each call cost 2.5-4x as much (select 4 µs
// with one instance, 11 µs with two, 15-17 µs with five). A copy compiles in about 7 ms and
// runs its first few thousand calls colder. Each copy's source differs by a comment, or V8 would
// hand back the shared code; `vm.compileFunction` keeps no cache entry alive (`new Function`'s
// eval cache held about 0.8 MB per copy). The module's two exports become the function's locals;
// when its shape is not the expected one, the module is imported once and shared (correct, only
// slower with several instances).
const EXPORTS = /^export (function instantiate\(|const _util = )/gm;
let copies = 0;

/** A function returning a fresh copy of `instantiate` each call, or undefined. */
function ownCopies(source, hash) {
  const exports = source.match(EXPORTS) ?? [];
  if (exports.length !== 2 || /^(export|import)\b/m.test(source.replace(EXPORTS, '')) || /\bimport\s*[.(]/.test(source)) {
    return undefined;
  }
  const body = `"use strict";\n${source.replace(EXPORTS, '$1')}\nreturn instantiate;\n`;
  try {
    compileFunction(body); // a syntax check: a shape we did not foresee is imported instead
  } catch {
    return undefined;
  }
  return () => {
    copies += 1;
    // Named, so stack traces and CPU profiles say where the generated code ran.
    return compileFunction(`${body}// copy ${copies}\n`, [], { filename: `jco-bindings-${hash.slice(0, 12)}-${copies}.js` })();
  };
}

// Two spots in jco-transpile 0.15's generated JS cost far more than they do (no transpile option
// turns them off); each is rewritten to an equivalent only where its exact text is found, so a
// jco whose output differs is loaded unchanged (correct, only slower; test/bindings.test.js
// notices):
// - `_debugLog`, called 10-60 times per export call (task bookkeeping and trampolines), reads
//   `process.env.JCO_DEBUG` (a getenv) each time: about 60% of a `select`. It now reads it once
//   per instantiation.
// - `WebAssembly.promising(f)` (JSPI), tried once per export at instantiation, is missing in
//   Node 20-22; the TypeError V8 throws makes it re-parse the whole generated function to word its
//   message, about 4 ms per export, 45 ms per instantiation. A helper throws a prepared error
//   instead, so jco's own catch takes the same synchronous fallback as before.
const DEBUG_LOG = /const _debugLog = \(\.\.\.args\) => \{\s*if \(!globalThis\?\.process\?\.env\?\.JCO_DEBUG\) \{ return; \}\s*console\.debug\(\.\.\.args\);\s*\};/g;
const DEBUG_LOG_ONCE = 'const _debugLog = globalThis?.process?.env?.JCO_DEBUG ? (...args) => console.debug(...args) : () => {};';
const PROMISING = /\bWebAssembly\.promising\(/g;
const PROMISING_HELPER = 'const _fpNoJspi = new TypeError(\'WebAssembly.promising is not a function\');\n'
  + 'function _fpPromising(f) { if (typeof WebAssembly.promising !== \'function\') throw _fpNoJspi; return WebAssembly.promising(f); }\n';

/** The generated bindings with the rewrites above applied where they fit; `rewrites` names them. */
export function fasterBindings(source) {
  const rewrites = [];
  if ((source.match(DEBUG_LOG) ?? []).length === 1) {
    source = source.replace(DEBUG_LOG, DEBUG_LOG_ONCE);
    rewrites.push('debug-log');
  }
  if (source.includes('WebAssembly.promising(') && !source.includes('_fpPromising')) {
    source = PROMISING_HELPER + source.replace(PROMISING, '_fpPromising(');
    rewrites.push('promising');
  }
  return { source, rewrites };
}

/** How many distinct components this process has compiled (for the swap-memory test). */
export function compiledCount() {
  return compiled.size;
}

let instances = 0;

/** How many instances this process has created (for the swap tests: a seen build reuses one). */
export function instanceCount() {
  return instances;
}

function toBytes(bytes) {
  if (bytes instanceof Uint8Array) return bytes;
  if (bytes instanceof ArrayBuffer) return new Uint8Array(bytes);
  throw new TypeError('wasm must be a Uint8Array, an ArrayBuffer or a path');
}

/** The guest's sandbox: no environment, arguments, preopened directories or network. */
function wasiImports() {
  return new WASIShim({ sandbox: { env: {}, args: [], preopens: {}, enableNetwork: false } }).getImportObject();
}

/**
 * Instantiates a compiled component with host imports `{send, nowMs, sleepMs, emit, seed}`
 * (already in WIT shape, never throwing) and returns its decoded `policy` interface.
 */
export function instantiate(entry, host) {
  const imports = { ...wasiImports(), [HOST]: host };
  const exports = entry.instantiate((name) => entry.modules.get(name), imports);
  instances += 1;
  const api = exports[entry.exportName] ?? exports.policy;
  if (!api?.Engine) throw new Error(`not a policy component: no ${entry.exportName} engine`);
  // jco would only fail at the first call of a missing function, which would count as a fault.
  const missing = FUNCTIONS.filter((name) => typeof api[name] !== 'function');
  if (speaks(entry.contract, '0.3.0')) missing.push(...FLEET_FUNCTIONS.filter((name) => typeof api[name] !== 'function'));
  if (missing.length > 0) {
    throw new Error(`not a policy component: it does not export ${missing.join(', ')} from ${entry.exportName}`);
  }
  return new Guest(api, entry.hash);
}

/** The interface's stateless functions, every one of which a policy must export. */
const FUNCTIONS = ['classify', 'succeeded', 'merge', 'version'];
/** What contract 0.3.0 adds to them (`engine.absorb` is a method, checked at its first call). */
const FLEET_FUNCTIONS = ['changes', 'fold'];

// ---- validation of outside values before they reach the guest (jco coerces silently) ----

export const REASONS = new Set(['auth', 'auth-permanent', 'billing', 'rate-limit', 'quota-exhausted', 'overloaded',
  'server-error', 'timeout', 'connection', 'context-overflow', 'model-not-found', 'content-filter',
  'bad-request', 'unknown']);
export const TRANSPORT_KINDS = new Set(['timeout', 'connection-refused', 'dns', 'tls', 'reset', 'other']);
export const MAX_ERROR_BODY = 64 * 1024;

function str(v, what) {
  if (typeof v !== 'string') throw new TypeError(`${what} must be a string`);
  return v;
}

export function uint(v, what, bits) {
  const n = typeof v === 'bigint' ? v : Number.isInteger(v) ? BigInt(v) : null;
  if (n === null || n < 0n || n >= 1n << BigInt(bits)) throw new TypeError(`${what} must be an integer in u${bits}`);
  return bits === 64 ? n : Number(n);
}

const UTF8 = new TextEncoder();

function bytes(v, what) {
  if (v === undefined || v === null) return new Uint8Array();
  if (typeof v === 'string') return UTF8.encode(v);
  if (v instanceof Uint8Array) return v;
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  throw new TypeError(`${what} must be a string or bytes`);
}

/** Headers from a Headers, a [name, value][] list, a {name: value} object or WIT records. */
export function encodeHeaders(h) {
  if (!h) return [];
  const pairs = typeof h.entries === 'function' && !Array.isArray(h) ? [...h.entries()]
    : Array.isArray(h) ? h.map((x) => (Array.isArray(x) ? x : [x?.name, x?.value]))
      : Object.entries(h);
  return pairs.map(([name, value]) => ({ name: str(name, 'header name'), value: String(value) }));
}

export function encodeRoute(r) {
  if (!r || typeof r !== 'object') throw new TypeError('route must be a route object from select()');
  return {
    provider: str(r.provider, 'route.provider'),
    model: str(r.model, 'route.model'),
    credential: str(r.credential, 'route.credential'),
    position: uint(r.position, 'route.position', 32),
  };
}

/** `{status, headers, body}` or `{transport, message}` into a WIT `failure`. */
export function encodeFailure(f) {
  if (f && f.transport !== undefined) {
    const kind = str(f.transport, 'failure.transport');
    if (!TRANSPORT_KINDS.has(kind)) throw new TypeError(`failure.transport must be one of ${[...TRANSPORT_KINDS].join(', ')}`);
    return { kind: 'transport', response: undefined, transport: { kind, message: String(f.message ?? kind) } };
  }
  if (f && f.status !== undefined) {
    return {
      kind: 'http',
      response: {
        status: uint(f.status, 'failure.status', 16),
        headers: encodeHeaders(f.headers),
        body: bytes(f.body, 'failure.body').subarray(0, MAX_ERROR_BODY),
      },
      transport: undefined,
    };
  }
  throw new TypeError('failure must be {status, headers, body} or {transport, message}');
}

export function encodeProgress(p) {
  if (p === undefined || p === null) return undefined;
  return {
    attempts: uint(p.attempts, 'progress.attempts', 32),
    waitedMs: uint(p.waitedMs, 'progress.waitedMs', 64),
    routeRetries: uint(p.routeRetries, 'progress.routeRetries', 32),
    leftPositions: (p.leftPositions ?? []).map((x) => uint(x, 'progress.leftPositions[]', 32)),
  };
}

export function encodeRequest(r) {
  return {
    path: str(r?.path ?? '/chat/completions', 'request.path'),
    method: str(r?.method ?? 'POST', 'request.method'),
    headers: encodeHeaders(r?.headers),
    body: bytes(typeof r?.body === 'object' && !(r.body instanceof Uint8Array) && !(r.body instanceof ArrayBuffer)
      && r.body !== null ? JSON.stringify(r.body) : r?.body, 'request.body'),
  };
}

export function encodeCredentials(list) {
  return list.map((c) => ({ id: str(c.id, 'credential.id'), fingerprint: str(c.fingerprint, 'credential.fingerprint') }));
}

/** An HTTP response for the `send` import. */
export function encodeResponse(status, headers, body) {
  return { status: uint(status, 'status', 16), headers: encodeHeaders(headers), body: bytes(body, 'body') };
}

export function isReason(r) {
  return REASONS.has(r);
}

/**
 * The guest's exports with inputs validated. Results come back as jco gives them (err payloads
 * thrown raw); `Guest` turns those into tagged values so callers never see a raw throw.
 */
class Guest {
  constructor(api, hash) {
    this.api = api;
    this.hash = hash;
  }

  /** `{ok: engine}` or `{err: config-error}`. */
  create(config, state, credentials) {
    return tagged(() => this.api.Engine.create(str(config, 'config'), state ?? undefined, encodeCredentials(credentials)));
  }

  /** `failure` already encoded (`encodeFailure`), so a bad input throws before the guest runs. */
  classify(provider, failure) {
    return this.api.classify(str(provider, 'provider'), failure);
  }

  /** `response` already encoded (`encodeResponse`). */
  succeeded(response) {
    return this.api.succeeded(response);
  }

  version() {
    return this.api.version();
  }

  /** `{ok: merged}` or `{err: state-error}`. */
  merge(a, b) {
    return tagged(() => this.api.merge(str(a, 'state a'), str(b, 'state b')));
  }

  /**
   * `{ok: {state, keepUntilMs} or undefined}` or `{err: state-error}` (contract 0.3.0; WIT
   * `delta`, `keepUntilMs` a bigint).
   */
  changes(since, now) {
    return tagged(() => this.api.changes(str(since, 'since'), str(now, 'now')));
  }

  /**
   * `{ok: {state, keepUntilMs, unreadable: [{index, message, newer}], forgotten}}` or `{err}`
   * (contract 0.3.0; WIT `folded`, `keepUntilMs` a bigint).
   */
  fold(states, nowMs, forgetAfterMs) {
    if (!Array.isArray(states)) throw new TypeError('states must be an array of snapshots (JSON text)');
    const list = states.map((s, i) => str(s, `states[${i}]`));
    return tagged(() => this.api.fold(list, uint(nowMs, 'nowMs', 64), uint(forgetAfterMs, 'forgetAfterMs', 64)));
  }

  /** Frees `engine` in the guest now (instead of when it is garbage collected). */
  drop(engine) {
    engine[DISPOSE]();
  }
}

/** jco puts a resource's destructor under this symbol. */
const DISPOSE = Symbol.dispose ?? Symbol.for('dispose');

/** Frees a resource (a driven call) in the guest now; false when it was already freed. */
export function dispose(resource) {
  try {
    resource[DISPOSE]();
    return true;
  } catch {
    return false;
  }
}

/** Runs a result-returning export: jco returns the ok value and throws the err payload. */
export function tagged(fn) {
  try {
    return { ok: fn() };
  } catch (e) {
    // A WIT err payload is a plain record; a JS Error here is a trap or a bug, not a result.
    if (e instanceof Error) throw e;
    return { err: e?.payload ?? e };
  }
}
