// Carries out a driven call (WIT `driven-call`, contract 0.2.0): the guest decides every step;
// this sends, reads with the time each step allows, sleeps, and hands the caller what the guest
// delivers once it commits. Nothing reaches the caller before the commit, so an error event, a
// cut, a stall or a slow first token before the first content is retried or fallen back from
// unseen; after it the caller reads the answer as it comes, pulled (backpressure: nothing is
// read upstream before the caller asks), and a failure ends it with the error event the guest
// wrote, or with a read error for a whole answer, which has no in-band way to say it.
import { PolicyError } from './errors.js';
import { Scrub } from './secrets.js';

const EMPTY = new Uint8Array();
const START = { kind: 'start', head: undefined, data: EMPTY, failure: undefined };
/** Statuses whose Response may carry no body. */
const NO_BODY = new Set([101, 204, 205, 304]);

/**
 * Drives `call` (`{next(input) -> step, close()}` from `Policy.begin`) over `carrier` (see
 * carrier.js). Resolves at the commit to `{response, route, ended}`: a fetch Response fed as
 * the guest delivers, the route that answered, and a promise of `{route, attempts, error}` once
 * the answer is over. Rejects with a PolicyError when the call failed before the commit, or with
 * the caller's abort reason; `signal` also errors a committed answer's body.
 */
export async function drive(call, { carrier, secrets, clock, signal }) {
  const run = new Run(carrier, secrets, clock, signal);
  try {
    signal?.throwIfAborted();
    let step = call.next(START);
    for (;;) {
      if (step.commit) return run.answer(call, step);
      if (step.kind === 'done' || step.kind === 'give-up') {
        throw new PolicyError(step.error ?? noCommit(step.why), step.attempts);
      }
      step = call.next(await run.carryOut(step));
      signal?.throwIfAborted();
    }
  } catch (e) {
    run.close();
    call.close();
    throw e;
  }
}

/** A done without a commit never comes from a well-formed guest; said plainly if it does. */
function noCommit(why) {
  return { reason: 'unknown', message: `the policy ended the call without an answer or an error: ${why}`, providers: [] };
}

/** One call's upstream side: the response open now, and the route it came from. */
class Run {
  #carrier;
  #secrets;
  #clock;
  #signal;
  /** The open response: `{read, close}` with its body scrubbed. */
  #body;
  /** The open response's status text, scrubbed (the guest's head has none). */
  #statusText = '';
  route;

  constructor(carrier, secrets, clock, signal) {
    this.#carrier = carrier;
    this.#secrets = secrets;
    this.#clock = clock;
    this.#signal = signal;
  }

  /** Carries out a `send`, `read` or `sleep` step; resolves to the guest's next input. */
  async carryOut(step) {
    const within = Number(step.withinMs);
    switch (step.kind) {
      case 'send': {
        this.close();
        this.route = step.outbound.route;
        const secret = this.#secrets.get(this.route.credential);
        const scrub = new Scrub(secret);
        const opened = await this.#carrier.open(step.outbound, secret, within, this.#signal);
        if (opened.timedOut) return input('timed-out');
        if (opened.failure) return failed(scrub.failure(opened.failure));
        this.#body = scrubbed(opened.body, scrub);
        this.#statusText = scrub.text(opened.head.statusText ?? '');
        const headers = scrub.headers(opened.head.headers).map(([name, value]) => ({ name, value }));
        return { ...input('head'), head: { status: opened.head.status, headers } };
      }
      case 'read': {
        if (!this.#body) return failed({ transport: 'other', message: 'the policy asked for a read with no response open' });
        const r = await this.#body.read(within);
        if (r.data) return { ...input('data'), data: r.data };
        if (r.end) return input('end');
        if (r.timedOut) return input('timed-out');
        return failed(r.failure);
      }
      case 'sleep':
        this.close();
        await this.#clock.wait(within, this.#signal);
        return input('slept');
      default:
        return failed({ transport: 'other', message: `the call is over (${step.kind})` });
    }
  }

  close() {
    this.#body?.close();
    this.#body = undefined;
  }

  /**
   * The committed answer: a Response whose body carries out the remaining steps as the caller
   * reads (`deliver` bytes first, then the step's own kind).
   */
  answer(call, commitStep) {
    let step = commitStep;
    let resolveEnded;
    const ended = new Promise((resolve) => { resolveEnded = resolve; });
    const finish = (error) => {
      this.close();
      call.close();
      resolveEnded({ route: step.route, attempts: step.attempts, error });
    };
    let pending = step.deliver;
    const body = new ReadableStream({
      pull: async (controller) => {
        for (;;) {
          if (pending.length > 0) {
            controller.enqueue(pending);
            pending = EMPTY;
            return;
          }
          if (step.kind === 'done') {
            finish(undefined);
            controller.close();
            return;
          }
          if (step.kind === 'give-up') {
            const error = new PolicyError(step.error ?? noCommit(step.why), step.attempts);
            finish(error);
            // The error event the guest wrote says it in-band; a whole answer's reader must not
            // take a cut body for all of it.
            if (step.deliver.length > 0) controller.close();
            else controller.error(error);
            return;
          }
          try {
            const next = call.next(await this.carryOut(step));
            this.#signal?.throwIfAborted();
            step = next;
          } catch (e) {
            finish(e);
            controller.error(e);
            return;
          }
          pending = step.deliver;
        }
      },
      cancel: (reason) => finish(reason instanceof Error ? reason : new Error(String(reason ?? 'the caller cancelled the answer'))),
    }, { highWaterMark: 0 });
    const { status, headers } = commitStep.commit;
    const response = new Response(NO_BODY.has(status) ? null : body, {
      status, statusText: this.#statusText, headers: headers.map(({ name, value }) => [name, value]),
    });
    if (NO_BODY.has(status)) body.pipeTo(new WritableStream()).catch(() => {});
    return { response, route: this.route, ended };
  }
}

/** `body` with the secret taken out of every chunk, a secret split across chunks included. */
function scrubbed(body, scrub) {
  const stream = scrub.stream();
  let ended = false;
  return {
    async read(withinMs) {
      if (ended) return { end: true };
      for (;;) {
        const r = await body.read(withinMs);
        if (r.data) {
          const out = stream.push(r.data);
          // All of it may be held back as a possible start of the secret (or be empty): read on.
          if (out.length > 0) return { data: out };
        } else if (r.end) {
          ended = true;
          const rest = stream.finish();
          return rest.length > 0 ? { data: rest } : r;
        } else {
          return r.failure ? { failure: scrub.failure(r.failure) } : r;
        }
      }
    },
    close: () => body.close(),
  };
}

function input(kind) {
  return { kind, head: undefined, data: EMPTY, failure: undefined };
}

/** `{transport, message}` as the guest's `failed` input. */
function failed(f) {
  return { ...input('failed'), failure: { kind: f.transport, message: String(f.message ?? f.transport) } };
}
