// bucketsync for browsers and Node: a small typed layer over the wasm-bindgen exports.
// Every sync rule lives in the Rust core; this file converts values, maps errors to classes,
// and supplies fetch, the clock and state storage.
import initWasm, * as wasm from './pkg/bucketsync_wasm.js';

let ready;
/** Loads the WebAssembly module once (every async entry point calls it). */
export function init() {
  ready ??= (async () => {
    const url = new URL('./pkg/bucketsync_wasm_bg.wasm', import.meta.url);
    if (url.protocol === 'file:') {
      const { readFile } = await import('node:fs/promises');
      await initWasm({ module_or_path: await readFile(url) });
    } else {
      await initWasm({ module_or_path: url });
    }
  })();
  return ready;
}

/** Any bucketsync error; `category` names its kind. */
export class BucketsyncError extends Error {
  constructor(message, category, options) {
    super(message, options);
    this.name = new.target.name;
    this.category = category;
  }
}
export class ConfigError extends BucketsyncError {}
export class AuthError extends BucketsyncError {}
export class NotFoundError extends BucketsyncError {}
export class ThrottledError extends BucketsyncError {}
export class TimeoutError extends BucketsyncError {}
export class NetworkError extends BucketsyncError {}
export class ServerError extends BucketsyncError {}
export class CorruptError extends BucketsyncError {}
export class WrongVaultError extends BucketsyncError {}
export class RollbackError extends BucketsyncError {}
export class ConflictError extends BucketsyncError {}

const CLASSES = {
  config: ConfigError, auth: AuthError, 'not-found': NotFoundError, throttled: ThrottledError,
  timeout: TimeoutError, network: NetworkError, server: ServerError, corrupt: CorruptError,
  'wrong-vault': WrongVaultError, rollback: RollbackError, conflict: ConflictError,
};

function toError(e, cause) {
  if (e instanceof BucketsyncError || typeof e?.category !== 'string') return e;
  const Class = CLASSES[e.category] ?? BucketsyncError;
  return new Class(e.message, e.category, cause ? { cause } : undefined);
}

function call(fn) {
  try {
    return fn();
  } catch (e) {
    throw toError(e);
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
function bytes(value, what) {
  if (typeof value === 'string') return encoder.encode(value);
  if (value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  throw new TypeError(`${what} must be a string or a Uint8Array`);
}

/** The secret every device of a vault shares. */
export class VaultKey {
  #inner;
  constructor(inner) {
    this.#inner = inner;
  }
  /** A new random key. */
  static async generate() {
    await init();
    return new VaultKey(call(() => wasm.VaultKey.generate()));
  }
  /** Reads a recovery code; a typo throws ConfigError. */
  static async fromRecoveryCode(code) {
    await init();
    return new VaultKey(call(() => wasm.VaultKey.fromRecoveryCode(code)));
  }
  /** The key as a human-typable code with a checksum. */
  recoveryCode() {
    return this.#inner.recoveryCode();
  }
  get vaultId() {
    return this.#inner.vaultId;
  }
  /** @internal */
  get wasm() {
    return this.#inner;
  }
}

/** The transport: fetch, after an optional signer (say, an auth service that presigns). */
function fetchTransport(fetchImpl, signer) {
  return async (request) => {
    let { method, url, headers } = request;
    if (signer) ({ url, headers } = await signer({ method, url, headers, body: request.body }));
    const response = await fetchImpl(url, {
      method,
      headers,
      body: method === 'PUT' ? request.body : undefined,
      cache: 'no-store',
    });
    return {
      status: response.status,
      headers: [...response.headers.entries()],
      body: new Uint8Array(await response.arrayBuffer()),
    };
  };
}

/** One device's replica of a vault. */
export class Vault {
  #inner;
  #storage;
  constructor(inner, storage) {
    this.#inner = inner;
    this.#storage = storage;
  }

  /**
   * Opens a replica. `store` is `s3://bucket/prefix?region=…&endpoint=…&path_style=true`.
   * `state` (bytes) or `storage` (indexedDbStorage / fileStorage) restores the local state;
   * `storage` also keeps it after every sync.
   */
  static async open({ store, key, device, state, storage, credentials, signer, fetch: fetchImpl } = {}) {
    await init();
    if (!(key instanceof VaultKey)) throw new TypeError('key must be a VaultKey');
    const saved = state ?? (storage ? await storage.load() : undefined);
    const send = fetchTransport(fetchImpl ?? globalThis.fetch.bind(globalThis), signer);
    const inner = call(() =>
      wasm.Vault.open(
        store, key.wasm, device, saved ?? undefined, credentials?.accessKeyId,
        credentials?.secretAccessKey, credentials?.sessionToken, send,
      ),
    );
    return new Vault(inner, storage);
  }

  put(key, value) {
    call(() => this.#inner.put(bytes(key, 'key'), bytes(value, 'value')));
  }
  /** The value as bytes, or undefined. */
  get(key) {
    return call(() => this.#inner.get(bytes(key, 'key')));
  }
  /** The value decoded as UTF-8, or undefined. */
  getString(key) {
    const value = this.get(key);
    return value === undefined ? undefined : decoder.decode(value);
  }
  delete(key) {
    call(() => this.#inner.delete(bytes(key, 'key')));
  }
  /** Live keys starting with `prefix`, sorted, as bytes. */
  keys(prefix = '') {
    return call(() => this.#inner.keys(bytes(prefix, 'prefix')));
  }
  /** Live keys decoded as UTF-8. */
  keyStrings(prefix = '') {
    return this.keys(prefix).map((k) => decoder.decode(k));
  }
  /** Pulls and pushes. Resolves to a report; rejects with a BucketsyncError subclass. */
  async sync() {
    let report;
    try {
      report = await this.#inner.sync();
    } catch (e) {
      await this.#save();
      throw toError(e);
    }
    await this.#save();
    report.errors = report.errors.map((e) => toError(e));
    return report;
  }
  /** The local state as bytes. */
  exportState() {
    return call(() => this.#inner.exportState());
  }
  get device() {
    return call(() => this.#inner.device);
  }
  get unpushed() {
    return call(() => this.#inner.unpushed);
  }
  async #save() {
    if (this.#storage) await this.#storage.save(this.exportState());
  }
}

/** A presigned URL for one request, valid for `expiresSeconds`: what an auth service hands out. */
export async function presign({ method, url, credentials, region = 'us-east-1', expiresSeconds = 900 }) {
  await init();
  return call(() => wasm.presign(method, url, credentials.accessKeyId, credentials.secretAccessKey,
    credentials.sessionToken, region, expiresSeconds));
}

/** SigV4 headers for a request the app makes itself (e.g. setting the bucket's CORS rule). */
export async function signRequest({ method, url, headers = [], body = new Uint8Array(), credentials, region = 'us-east-1' }) {
  await init();
  return call(() => wasm.signRequest(method, url, headers, bytes(body, 'body'), credentials.accessKeyId,
    credentials.secretAccessKey, credentials.sessionToken, region));
}

/** Keeps the state in IndexedDB (browsers). */
export function indexedDbStorage(name = 'bucketsync', key = 'state') {
  const open = () => new Promise((resolve, reject) => {
    const request = indexedDB.open(name, 1);
    request.onupgradeneeded = () => request.result.createObjectStore('state');
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
  const run = async (mode, op) => {
    const db = await open();
    return new Promise((resolve, reject) => {
      const tx = db.transaction('state', mode);
      const request = op(tx.objectStore('state'));
      tx.oncomplete = () => { db.close(); resolve(request.result); };
      tx.onerror = () => { db.close(); reject(tx.error); };
    });
  };
  return {
    load: async () => (await run('readonly', (s) => s.get(key))) ?? undefined,
    save: (state) => run('readwrite', (s) => s.put(state, key)),
  };
}

/** Keeps the state in a file, replaced atomically (Node). */
export function fileStorage(path) {
  return {
    async load() {
      const { readFile } = await import('node:fs/promises');
      try {
        return new Uint8Array(await readFile(path));
      } catch (e) {
        if (e.code === 'ENOENT') return undefined;
        throw e;
      }
    },
    async save(state) {
      const { writeFile, rename } = await import('node:fs/promises');
      const tmp = `${path}.tmp-${process.pid}`;
      await writeFile(tmp, state);
      await rename(tmp, path);
    },
  };
}
