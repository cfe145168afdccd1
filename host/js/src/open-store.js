// A store from one string, as the fleet workers and configs name them: `redis://…`, `rediss://…`,
// `file:/abs/path` or a plain path (the file store, the default).
import { fileURLToPath } from 'node:url';
import { FileStore } from './file-store.js';
import { RedisStore } from './redis-store.js';

/**
 * `options` go to the store's constructor (`name`, `timeoutMs`, `caFile` for Redis;
 * `lockTimeoutMs` for a file; the fleet options for both).
 */
/**
 * @param {string} spec
 * @param {any} [options]
 */
export function openStore(spec, options = {}) {
  if (typeof spec !== 'string' || spec === '') throw new TypeError('a store is named by a redis://, rediss:// or file: URL or a path');
  if (/^rediss?:\/\//.test(spec)) return new RedisStore(spec, options);
  if (spec.startsWith('file:')) return new FileStore(fileURLToPath(spec), options);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(spec)) throw new TypeError(`no store speaks ${spec.split(':')[0]}: (use redis://, rediss://, file: or a path)`);
  return new FileStore(spec, options);
}
