// What a call gets when the policy itself failed (a trap or any throw out of the guest): a safe
// default decision made by the host alone, as in the Rust and Python hosts.

/** The delay of fail-open's single retry. */
export const FAIL_OPEN_DELAY_MS = 1000n;
/** The rule on everything the host decides or reports for a failed policy. */
export const FAULT_RULE = 'host.policy-fault';

export function finalError(why) {
  return { reason: 'unknown', message: `the failover policy failed (${why}); the host gave up on this call`, providers: [] };
}

/** A crash loop ended by going back to the policy that ran before (`tests/hosts/host-messages.json`). */
export function crashLoopMessage(faults, windowS, why) {
  return `the policy failed ${faults} times within ${windowS} s (last: ${why}); fell back to the previous policy`;
}

/** A crash loop with nothing to go back to: every call fails closed. */
export function closedMessage(faults, windowS, why) {
  return `the policy failed ${faults} times within ${windowS} s (last: ${why}) and no previous policy could `
    + 'take over; every call fails closed until a new policy is swapped in';
}

/** Whether a response is an answer while the policy cannot say: its status is a 2xx. */
export function succeeded(status) {
  return status >= 200 && status < 300;
}

/**
 * The action for a failed `onFailure` (WIT-shaped `route`, `failure`, `progress`). 'open': a
 * provider-side failure is retried once on the same route after 1000 ms; otherwise give up.
 */
export function failedAction(mode, route, failure, progress, why) {
  const p = progress ?? { attempts: 0, waitedMs: 0n, routeRetries: 0, leftPositions: [] };
  const retry = mode === 'open' && providerSide(failure) && p.routeRetries === 0;
  const classified = {
    reason: 'unknown', retryable: retry, rotateCredential: false, fallBack: false, retryAfterMs: undefined,
    rule: FAULT_RULE, message: `not classified: the policy failed (${why})`,
  };
  if (retry) {
    return {
      kind: 'retry', route, delayMs: FAIL_OPEN_DELAY_MS, freshConnection: true, classified,
      progress: { attempts: p.attempts + 1, waitedMs: p.waitedMs + FAIL_OPEN_DELAY_MS, routeRetries: p.routeRetries + 1, leftPositions: [...p.leftPositions] },
      rule: `${FAULT_RULE}.retry`,
      why: `the policy failed (${why}); fail-open: one retry on the same route in ${FAIL_OPEN_DELAY_MS} ms`,
      error: undefined,
    };
  }
  const error = finalError(why);
  return {
    kind: 'give-up', route: undefined, delayMs: 0n, freshConnection: false, classified,
    progress: { ...p, attempts: p.attempts + 1, leftPositions: [...p.leftPositions] },
    rule: `${FAULT_RULE}.give-up`, why: error.message, error,
  };
}

function providerSide(failure) {
  if (failure.kind === 'http') {
    const s = failure.response.status;
    return s === 408 || s === 429 || (s >= 500 && s <= 599);
  }
  return ['timeout', 'reset', 'connection-refused'].includes(failure.transport.kind);
}

/** A throw out of the guest, in a few words for events and errors. */
export function describe(e) {
  if (e instanceof Error) return `${e.name}: ${e.message}`;
  return String(e);
}
