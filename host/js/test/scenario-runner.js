// Replays a tests/scenarios/*.json file through the JS host in virtual time (the format is
// tests/scenarios/README.md). A thin runner: scripted `send`, virtual clock, events into the
// trace; every decision is the guest's. Returns the trace and the failed expectations. It carries
// out the steps in STEP_KINDS; a `stream` step is a driven call carried out by the package's own
// executor (Policy.call) over a scripted carrier in virtual time, as the Rust runner does.
import { Policy, VirtualClock, PolicyError } from '../src/index.js';

export const STEP_KINDS = ['advance_ms', 'select', 'call', 'stream', 'set_credentials', 'script', 'restart'];
/** What any step may carry besides its kind. */
const STEP_CHECKS = ['expect', 'events', 'no_events'];

/** The step kinds of scenario `sc` this runner does not carry out, sorted. */
export function unsupportedSteps(sc) {
  const keys = new Set(sc.steps.flatMap((s) => Object.keys(s)));
  return [...keys].filter((k) => !STEP_KINDS.includes(k) && !STEP_CHECKS.includes(k)).sort();
}

const START_MS = 1795528800000;
const OK = {
  status: 200,
  headers: { 'content-type': 'application/json' },
  body: { id: 'sim', object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }] },
};
const DEFAULT_REQUEST = { path: '/chat/completions', body: { model: 'placeholder', messages: [{ role: 'user', content: 'hello' }] } };

const routeName = (r) => `${r.provider}/${r.model}#${r.credential}`;

/** Runs `sc` through `wasm` (default: the packaged policy); throws, before running anything, for a step it does not carry out. */
export async function runScenario(sc, { wasm } = {}) {
  const unsupported = unsupportedSteps(sc);
  if (unsupported.length > 0) throw new Error(`scenario ${sc.name} has steps this runner does not carry out: ${unsupported.join(', ')}`);
  const start = sc.start_ms ?? START_MS;
  const clock = new VirtualClock(start);
  const trace = [];
  const failures = [];
  let step = 0;
  let stepSends = [];
  let stepEvents = [];
  const providers = structuredClone(sc.providers ?? {});
  const t = () => clock.now() - start;

  const credentials = sc.credentials ?? Object.values(sc.config.providers ?? {})
    .flatMap((p) => p.credentials ?? []).map((c) => ({ id: c.id, fingerprint: `fp-${c.id}` }));

  function next(route) {
    const byKey = providers[`${route.provider}#${route.credential}`];
    const byProvider = providers[route.provider];
    if (byKey?.script?.length) return byKey.script.shift();
    if (byProvider?.script?.length) return byProvider.script.shift();
    return byKey?.default ?? byProvider?.default ?? OK;
  }

  function send(outbound) {
    const route = outbound.route;
    const sentAt = t(); // the trace shows when a send starts, as in the Rust and Python runners
    const r = next(route);
    let result;
    if (r.transport) {
      result = { transport: r.transport, message: r.message ?? r.transport };
    } else {
      const delay = r.delay_ms ?? 0;
      const timeout = Number(outbound.readTimeoutMs);
      if (delay >= timeout) {
        clock.advance(timeout);
        result = { transport: 'timeout', message: `no response within the read timeout of ${timeout} ms` };
      } else {
        clock.advance(delay);
        result = { status: r.status, headers: r.headers ?? {}, body: wholeBody(r.body) };
      }
    }
    const outcome = result.transport ?? String(result.status);
    stepSends.push({ provider: route.provider, credential: route.credential, outcome });
    trace.push({ t: sentAt, step, type: 'send', route: routeName(route), outcome });
    return result;
  }

  /** The carrier of `stream` steps: the script's answers in virtual time (README: `stream` steps). */
  const carrier = {
    async open(outbound, secret, withinMs) {
      const route = outbound.route;
      const sentAt = t();
      const r = next(route);
      let opened;
      if (r.transport) {
        opened = { failure: { transport: r.transport, message: r.message ?? `scripted ${r.transport}` } };
      } else if (r.silent || (r.delay_ms ?? 0) >= withinMs) {
        clock.advance(withinMs);
        opened = { timedOut: true };
      } else {
        clock.advance(r.delay_ms ?? 0);
        const pieces = r.stream ? structuredClone(r.stream) : [{ raw: wholeBody(r.body) }];
        opened = { head: { status: r.status, headers: Object.entries(r.headers ?? {}) }, body: scriptedBody(pieces, clock) };
      }
      const outcome = opened.failure?.transport ?? (opened.timedOut ? 'timeout' : String(r.status));
      stepSends.push({ provider: route.provider, credential: route.credential, outcome });
      trace.push({ t: sentAt, step, type: 'send', route: routeName(route), outcome });
      return opened;
    },
  };

  const onEvent = (e) => {
    stepEvents.push(e);
    trace.push({ t: Number(e.atMs) - start, step, type: 'event', kind: e.kind, rule: e.rule, message: e.message });
  };
  const load = (state) => Policy.load(sc.config, { state, credentials, clock, onEvent, send, seed: sc.seed ?? 1, wasm });

  let policy = await load(sc.state ?? undefined);
  const fail = (what) => failures.push(`${sc.name} step ${step}: ${what}`);

  for (const s of sc.steps) {
    if (step > 0) {
      // Step 0 also owns the events of the first load, as in the Rust harness.
      stepSends = [];
      stepEvents = [];
    }
    const before = clock.now();
    const expect = s.expect ?? {};
    if (s.advance_ms !== undefined) {
      clock.advance(s.advance_ms);
      trace.push({ t: t(), step, type: 'advance' });
    } else if (s.restart) {
      const state = policy.snapshot();
      trace.push({ t: t(), step, type: 'restart' });
      policy = await load(state);
    } else if (s.stream) {
      const request = s.stream.request ? { ...DEFAULT_REQUEST, ...s.stream.request } : DEFAULT_REQUEST;
      let ended;
      let committed = null;
      const chunks = [];
      try {
        const answer = await policy.call(request, { carrier, timeoutMs: s.stream.timeout_ms });
        committed = t();
        try {
          for await (const chunk of answer.response.body) chunks.push(Buffer.from(chunk));
        } catch {
          // A whole answer cut after commit: its read fails, and `ended` says why.
        }
        ended = await answer.ended;
      } catch (e) {
        if (!(e instanceof PolicyError)) throw e;
        ended = { error: e, attempts: e.attempts };
      }
      const ok = ended.error ? undefined : { route: ended.route, attempts: ended.attempts };
      const error = ended.error && { reason: ended.error.reason, message: ended.error.message, attempts: ended.attempts };
      const attempts = summary(ended.attempts);
      const delivered = Buffer.concat(chunks).toString('utf8');
      trace.push({ ...resultLine(ok, error, attempts), committed_t: committed, delivered });
      checkCall(expect, ok, error, attempts, stepSends, clock.now() - before, fail);
      if (expect.committed !== undefined && expect.committed !== (committed !== null)) fail(`committed: expected ${expect.committed}`);
      for (const c of expect.delivered_contains ?? []) if (!delivered.includes(c)) fail(`delivered text lacks ${JSON.stringify(c)}: ${delivered}`);
      for (const c of expect.delivered_excludes ?? []) if (delivered.includes(c)) fail(`delivered text holds ${JSON.stringify(c)}: ${delivered}`);
    } else if (s.set_credentials) {
      policy.setCredentials(s.set_credentials);
      trace.push({ t: t(), step, type: 'set_credentials' });
    } else if (s.script) {
      for (const [name, spec] of Object.entries(s.script)) providers[name] = structuredClone(spec);
      trace.push({ t: t(), step, type: 'script' });
    } else if (s.select) {
      let route;
      let error;
      try {
        route = policy.select();
        trace.push({ t: t(), step, type: 'select', route: routeName(route) });
      } catch (e) {
        if (!(e instanceof PolicyError)) throw e;
        error = e;
        trace.push({ t: t(), step, type: 'select', no_route: e.message });
      }
      if (expect.route) matchRoute(route, expect.route, 'selected route', fail);
      if (expect.no_route !== undefined && expect.no_route !== !!error) fail(`no_route: expected ${expect.no_route}`);
      for (const c of expect.contains ?? []) {
        if (!error?.message.includes(c)) fail(`no-route message lacks ${JSON.stringify(c)}: ${error?.message}`);
      }
    } else if (s.call) {
      const request = s.call.request ? { ...DEFAULT_REQUEST, ...s.call.request } : DEFAULT_REQUEST;
      let ok;
      let error;
      try {
        ok = policy.callSync(request);
      } catch (e) {
        if (!(e instanceof PolicyError)) throw e;
        error = e;
      }
      const attempts = summary((ok ?? error).attempts);
      trace.push(resultLine(ok, error, attempts));
      checkCall(expect, ok, error, attempts, stepSends, clock.now() - before, fail);
    } else {
      fail(`unknown step ${JSON.stringify(s)}`);
    }
    for (const want of s.events ?? []) {
      if (!stepEvents.some((e) => (!want.kind || e.kind === want.kind) && (!want.contains || e.message.includes(want.contains)))) {
        fail(`no event ${JSON.stringify(want)}; got ${JSON.stringify(stepEvents.map((e) => [e.kind, e.message]))}`);
      }
    }
    for (const kind of s.no_events ?? []) {
      if (stepEvents.some((e) => e.kind === kind)) fail(`unexpected event ${kind}`);
    }
    step += 1;
  }
  return { trace, failures };

  function resultLine(ok, error, attempts) {
    return ok
      ? { t: t(), step, type: 'result', ok: true, route: routeName(ok.route), attempts }
      : { t: t(), step, type: 'result', ok: false, reason: error.reason, message: error.message, attempts };
  }
}

/** Attempts as trace lines write them. */
function summary(attempts) {
  return attempts.map((a) => ({
    route: routeName(a.route),
    outcome: a.outcome,
    reason: a.classified?.reason ?? null,
    action: a.action?.kind ?? null,
    rule: a.action?.rule ?? null,
    delay_ms: a.action ? Number(a.action.delayMs) : null,
  }));
}

/** A scripted body as text: a string as is, any other JSON value compactly, absent empty. */
function wholeBody(body) {
  return body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body);
}

/** A piece on the wire: `raw` as is, else an SSE event of `event` and `data`. */
function pieceBytes(p) {
  if (p.raw !== undefined) return Buffer.from(p.raw);
  let out = p.event !== undefined ? `event: ${p.event}\n` : '';
  if (p.data !== undefined) out += `data: ${typeof p.data === 'string' ? p.data : JSON.stringify(p.data)}\n\n`;
  else if (p.event !== undefined) out += '\n';
  return Buffer.from(out);
}

/**
 * A scripted body in virtual time: each piece after its delay, unless the read's time runs out
 * first (then the piece stays due, its delay shortened by the time passed); a stall never comes.
 */
function scriptedBody(pieces, clock) {
  return {
    async read(withinMs) {
      const piece = pieces[0];
      if (!piece) return { end: true };
      const delay = piece.delay_ms ?? 0;
      if (piece.stall || delay > withinMs) {
        clock.advance(withinMs);
        piece.delay_ms = Math.max(0, delay - withinMs);
        return { timedOut: true };
      }
      clock.advance(delay);
      if (piece.reset) {
        pieces.shift();
        return { failure: { transport: 'reset', message: 'scripted reset mid-body' } };
      }
      if ((piece.repeat ?? 1) > 1) piece.repeat -= 1;
      else pieces.shift();
      return { data: pieceBytes(piece) };
    },
    close() {},
  };
}

function matchRoute(route, want, what, fail) {
  for (const [k, v] of Object.entries(want)) {
    if (route?.[k] !== v) fail(`${what}.${k}: expected ${JSON.stringify(v)}, got ${JSON.stringify(route?.[k])}`);
  }
}

function checkCall(expect, ok, error, attempts, sends, elapsed, fail) {
  if (expect.ok !== undefined && expect.ok !== !!ok) fail(`ok: expected ${expect.ok}, got ${!!ok}${error ? ` (${error.message})` : ''}`);
  if (expect.route) matchRoute(ok?.route, expect.route, 'route', fail);
  if (expect.attempts !== undefined && expect.attempts !== sends.length) fail(`attempts: expected ${expect.attempts}, got ${sends.length}`);
  if (expect.reason !== undefined && expect.reason !== error?.reason) fail(`reason: expected ${expect.reason}, got ${error?.reason}`);
  for (const c of expect.contains ?? []) {
    if (!error?.message.includes(c)) fail(`message lacks ${JSON.stringify(c)}: ${error?.message}`);
  }
  if (expect.sends) {
    if (expect.sends.length !== sends.length) fail(`sends: expected ${expect.sends.length}, got ${JSON.stringify(sends)}`);
    expect.sends.forEach((want, i) => {
      for (const [k, v] of Object.entries(want)) {
        if (sends[i]?.[k] !== v) fail(`sends[${i}].${k}: expected ${JSON.stringify(v)}, got ${JSON.stringify(sends[i]?.[k])}`);
      }
    });
  }
  for (const target of expect.not_sent ?? []) {
    if (sends.some((s) => s.provider === target || `${s.provider}#${s.credential}` === target)) fail(`sent to ${target}`);
  }
  if (expect.elapsed_ms !== undefined && elapsed !== expect.elapsed_ms) fail(`elapsed_ms: expected ${expect.elapsed_ms}, got ${elapsed}`);
  if (expect.elapsed_ms_max !== undefined && elapsed > expect.elapsed_ms_max) fail(`elapsed_ms: expected at most ${expect.elapsed_ms_max}, got ${elapsed}`);
}
