// The options every store shares (tests/fleet/README.md, "Options"), checked once: a wrong name
// or value is an error, never a silent default.

/** The spec's defaults. */
export const FLEET_DEFAULTS = Object.freeze({ refreshMs: 250, retryMs: 5000, foldAfter: 256, forgetAfterMs: 604_800_000 });

/**
 * `{refreshMs, retryMs, foldAfter, forgetAfterMs}` with the defaults filled in. `others` are the
 * store's own option names, listed when an unknown name is given.
 */
export function fleetOptions(given, others = []) {
  const unknown = Object.keys(given).filter((k) => !(k in FLEET_DEFAULTS));
  if (unknown.length > 0) {
    throw new TypeError(`unknown store option ${unknown.join(', ')} (known: ${[...others, ...Object.keys(FLEET_DEFAULTS)].join(', ')})`);
  }
  const options = { ...FLEET_DEFAULTS, ...given };
  for (const [name, value] of Object.entries(options)) {
    if (!(Number.isSafeInteger(value) && value >= 0)) throw new TypeError(`store option ${name} must be an integer >= 0, not ${value}`);
  }
  return Object.freeze(options);
}
