// What the fleet tests share: a real redis-server on 127.0.0.1 (plain, or TLS with an ACL user
// and certificates made by openssl), node processes run to their end, and the fleet config.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ACL_RULES = readFileSync(new URL('../../../tests/fleet/redis-acl.txt', import.meta.url), 'utf8').split(/\s+/).filter(Boolean);

export const WORKER = fileURLToPath(new URL('../bench/fleet-worker.mjs', import.meta.url));

export function tempDir() {
  return mkdtempSync(join(tmpdir(), 'fleet-js-'));
}

/** A port free on 127.0.0.1 right now. */
export async function freePort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = /** @type {import('node:net').AddressInfo} */ (server.address());
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A CA and a server certificate for 127.0.0.1, made by openssl in `dir`. */
export function makeCerts(dir) {
  const run = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=fleet-test-ca', '-keyout', 'ca.key', '-out', 'ca.pem');
  run('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', 'server.key', '-out', 'server.csr');
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
  run('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '1', '-extfile', 'ext.cnf', '-out', 'server.pem');
  return { ca: join(dir, 'ca.pem'), cert: join(dir, 'server.pem'), key: join(dir, 'server.key') };
}

/**
 * A redis-server on 127.0.0.1 that stops with `stop()`. `tls`: certs from makeCerts (the plain
 * port is then closed); `user`: an ACL user `{name, password}` allowed the fleet's keys, with
 * the default user off.
 */
export async function startRedis({ port, tls, user } = {}) {
  port ??= await freePort();
  const args = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
  if (tls) args.push('--port', '0', '--tls-port', String(port), '--tls-cert-file', tls.cert, '--tls-key-file', tls.key, '--tls-ca-cert-file', tls.ca, '--tls-auth-clients', 'no');
  else args.push('--port', String(port));
  // Each word of an ACL rule is its own argument on redis-server's command line; the rules are
  // the least a store needs (the README's ACL line, shared by every host's tests).
  if (user) args.push('--user', user.name, 'on', `>${user.password}`, ...ACL_RULES, '--user', 'default', 'off');
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  const deadline = Date.now() + 10_000;
  while (!/Ready to accept connections/.test(out)) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`redis-server did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    port,
    url: `${tls ? 'rediss' : 'redis'}://${user ? `${user.name}:${user.password}@` : ''}127.0.0.1:${port}`,
    /** Runs redis-cli against this server (plain only). */
    cli: (...cmd) => execFileSync('redis-cli', ['-p', String(port), ...cmd], { encoding: 'utf8' }).trim(),
    stop: () => new Promise((resolve) => {
      if (child.exitCode !== null) return resolve(undefined);
      child.once('exit', resolve);
      child.kill('SIGTERM');
    }),
  };
}

/** Runs `node script args` to its end: `{code, stdout, stderr}`. */
export function runNode(script, args, { env } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The fleet config of tests/fleet/README.md: provider `fleet` with keys w<i>-k<j>, written to `dir`. */
export function fleetConfig(dir, workers, keys) {
  const credentials = [];
  for (let i = 0; i < workers; i += 1) for (let j = 0; j < keys; j += 1) credentials.push({ id: `w${i}-k${j}` });
  const config = { providers: { fleet: { base_url: 'http://127.0.0.1:9/v1', family: 'openai', credentials } }, primary: { provider: 'fleet', model: 'm' } };
  const path = join(dir, 'config.json');
  writeFileSync(path, JSON.stringify(config));
  return { path, config, secrets: Object.fromEntries(credentials.map((c) => [c.id, `sk-fleet-${c.id}`])) };
}

/** The credentials `state` (JSON text) shows cooling at `nowMs`. */
export function cooling(state, nowMs = Date.now()) {
  return Object.entries(JSON.parse(state).credentials ?? {}).filter(([, c]) => c.cooldown_until_ms > nowMs).map(([id]) => id).sort();
}
