// bucketsync for browsers and Node: a small typed layer over the wasm-bindgen exports.
// Every sync rule lives in the Rust core; this file converts values, maps errors to classes,
// and supplies fetch, the clock and state storage.
import initWasm, * as wasm from './pkg/bucketsync_wasm.js';

let ready;
/**
 * Loads the WebAssembly module once (every async entry point calls it). By default the module
 * is found beside this file (`pkg/bucketsync_wasm_bg.wasm`, read from disk in Node). A bundler
 * that does not carry `new URL('…', import.meta.url)` assets along (esbuild) needs it given
 * here first: its URL (`import wasmUrl from 'bucketsync/wasm'` with a file loader), a Response,
 * its bytes or a WebAssembly.Module.
 */
export function init(source) {
  ready ??= (async () => {
    source ??= new URL('./pkg/bucketsync_wasm_bg.wasm', import.meta.url);
    await initWasm({ module_or_path: await wasmSource(source) });
  })().catch((e) => {
    ready = undefined; // a later call may give the right place
    throw e;
  });
  return ready;
}

/** A Node built-in module, or undefined outside Node (no import statement: a browser bundle
 * must not try to resolve it). */
function nodeModule(name) {
  return globalThis.process?.getBuiltinModule?.(name);
}

/** Node's fs/promises. */
function nodeFs() {
  return nodeModule('node:fs/promises');
}

async function wasmSource(source) {
  if (typeof source !== 'string' && !(source instanceof URL)) return source;
  let url;
  try {
    url = new URL(source, globalThis.location?.href);
  } catch {
    url = undefined; // a plain path, in Node
  }
  const fs = nodeFs();
  if (fs && (!url || url.protocol === 'file:')) return fs.readFile(url ?? source);
  const response = await fetch(url ?? source);
  if (!response.ok) {
    throw new ConfigError(
      `could not load the WebAssembly module from ${url ?? source} (HTTP ${response.status}): serve ` +
        'it there, or pass its URL or bytes to init() first (esbuild: `import wasmUrl from ' +
        "'bucketsync/wasm'` with the file loader for .wasm, then `await init(wasmUrl)`)",
      'config',
    );
  }
  return response;
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
export class LockedError extends BucketsyncError {}
export class ClockError extends BucketsyncError {}
/** Not allowed: a shared vault's role (or a revocation), or a grant sealed to another identity. */
export class AccessError extends BucketsyncError {}

const CLASSES = {
  config: ConfigError, auth: AuthError, 'not-found': NotFoundError, throttled: ThrottledError,
  timeout: TimeoutError, network: NetworkError, server: ServerError, corrupt: CorruptError,
  'wrong-vault': WrongVaultError, rollback: RollbackError, conflict: ConflictError,
  locked: LockedError, clock: ClockError, access: AccessError,
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

/** Awaits what `fn` returns (a wasm promise), with its error as its class. */
async function callAsync(fn) {
  try {
    return await fn();
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

/**
 * The transport: fetch, after an optional signer (say, an auth service that presigns). Every
 * request gives up after `timeoutMs`, and at once when `cancelled()` names an aborted signal.
 */
function fetchTransport(fetchImpl, signer, timeoutMs, cancelled) {
  return async (request) => {
    let { method, url, headers } = request;
    if (signer) {
      // The signer may add headers (and must give the URL to use); the engine's own headers
      // (If-None-Match, content-type) always go out as the engine set them.
      const signed = await signer({ method, url, headers, body: request.body });
      url = signed.url;
      const own = new Set(headers.map(([name]) => name.toLowerCase()));
      const added = (signed.headers ?? []).filter(([name]) => !own.has(name.toLowerCase()));
      headers = [...headers, ...added];
    }
    const signals = [AbortSignal.timeout(timeoutMs)];
    const cancel = cancelled();
    if (cancel) signals.push(cancel);
    const response = await fetchImpl(url, {
      method,
      headers,
      // PUT and POST carry a body (POST: a multipart upload's start and completion).
      body: method === 'PUT' || method === 'POST' ? request.body : undefined,
      cache: 'no-store',
      signal: AbortSignal.any(signals),
    });
    return {
      status: response.status,
      headers: [...response.headers.entries()],
      body: new Uint8Array(await response.arrayBuffer()),
    };
  };
}

/**
 * Holds the Web Lock `name` until the returned function is called: one writer per local state
 * (two tabs of one page must not write as one device). `wait`: wait for the holder to let go
 * instead of failing with LockedError.
 */
function acquireLock(name, wait) {
  const locks = globalThis.navigator?.locks;
  if (!locks) return Promise.resolve(() => {});
  return new Promise((resolve, reject) => {
    locks
      .request(name, { ifAvailable: !wait }, (lock) => {
        if (!lock) {
          reject(new LockedError(
            `the local state ${name} is in use by another tab or window (one writer per device); ` +
              'open with { lock: "wait" }, or with another storage as a new device',
            'locked',
          ));
          return undefined;
        }
        return new Promise((release) => resolve(release));
      })
      .catch(reject);
  });
}

/** Reads what a storage's load() gave: { snapshot, journal }, or bytes of a snapshot alone. */
function savedState(loaded) {
  if (loaded === undefined || loaded === null) return undefined;
  if (loaded instanceof Uint8Array) return { snapshot: loaded, journal: undefined };
  return { snapshot: loaded.snapshot, journal: loaded.journal };
}

/**
 * Opens a vault's replica: takes the state's lock, loads the state, and calls
 * `openInner(opening, makeSend)` for the wasm vault, `opening` being `{ device, snapshot,
 * journal, connection, graceDays, maxClockSkewDays, maxFutureDays }` (undefined ones: the
 * core's defaults) and `makeSend(fetch, signer, timeoutMs)` the transport of the connection's
 * pieces the core decides on (see `Vault.open`).
 */
async function openVault({ device, state, storage, lock = 'error', graceDays, maxClockSkewDays, maxFutureDays },
  connection, openInner) {
  if (lock !== 'error' && lock !== 'wait') throw new TypeError("lock must be 'error' or 'wait'");
  const release = !storage ? () => {}
    : storage.lock ? await storage.lock(lock === 'wait')
      : await acquireLock(`bucketsync:${storage.name ?? 'state'}`, lock === 'wait');
  try {
    const saved = state !== undefined ? savedState(state) : storage ? savedState(await storage.load()) : undefined;
    let vault;
    // The core decides what the vault reaches its store with (for a vault opened through a
    // home, what it takes of the home's); this makes its sends of the pieces decided. A file
    // transfer gets a transport of its own, aborted by its own signal.
    let transport;
    const makeSend = (fetchImpl, signer, timeoutMs) => {
      transport = (cancelled) => fetchTransport(fetchImpl ?? globalThis.fetch.bind(globalThis), signer,
        timeoutMs, cancelled);
      return transport(() => vault?.signal);
    };
    const opening = {
      device, snapshot: saved?.snapshot, journal: saved?.journal, connection, graceDays, maxClockSkewDays, maxFutureDays,
    };
    const inner = await callAsync(() => openInner(opening, makeSend));
    vault = new Vault(inner, storage, release, transport, inner.vaultId);
    await vault.flush();
    return vault;
  } catch (e) {
    release();
    throw e;
  }
}

/**
 * What the app gives for reaching a store, as the wasm layer reads it (the core checks it):
 * `{ credentials, signer, fetch, timeoutMs }`.
 */
function connectionOf({ credentials, signer, fetch: fetchImpl, timeoutMs }) {
  return { credentials, signer, fetch: fetchImpl, timeoutMs };
}

/** The options of a vault's own (state, device, lock, time bounds), without its connection. */
function ownOptions({ store, key, mode, credentials, signer, fetch: fetchImpl, timeoutMs, ...own }) {
  return own;
}

/** One device's replica of a vault. */
export class Vault {
  #inner;
  #storage;
  #release;
  #saving = Promise.resolve();
  #pending;
  #signal;
  #transport;
  #vaultId;
  /** The running (or waiting) background sync: see startAutoSync. */
  #auto;
  /** Settles when the last background sync has ended. */
  #autoEnded = Promise.resolve();
  constructor(inner, storage, release, transport, vaultId) {
    this.#inner = inner;
    this.#storage = storage;
    this.#release = release;
    this.#transport = transport;
    this.#vaultId = vaultId;
  }

  /**
   * Opens a replica. `store` is `s3://bucket/prefix?region=…&endpoint=…&path_style=true`.
   * `storage` (indexedDbStorage / fileStorage) keeps the local state: every put is written to it
   * in one transaction per batch (await the put, or `flush()`, to know it is stored). `state`
   * (bytes from exportState) starts from a snapshot instead. With a storage, the state is held
   * under its lock (fileStorage: a lock file; otherwise a Web Lock), one writer per device: a
   * second opener gets LockedError, or waits with `lock: 'wait'`. `timeoutMs` bounds every request (default 30 s). `device` names the device
   * ("Anna's laptop", kept as its label) or gives a stable id (32 hex digits). `mode`: 'join'
   * (default: a new device's first sync rejects with NotFoundError when the store holds no
   * vault for this key), 'create' (see `Vault.create`) or 'join-or-create'.
   */
  static async open({ store, key, mode = 'join', ...options } = {}) {
    await init();
    if (!(key instanceof VaultKey)) throw new TypeError('key must be a VaultKey');
    // The platform's fetch when none is given: the vault (and those opened through it as a
    // home) always sends through JS.
    const connection = connectionOf({ ...options, fetch: options.fetch ?? globalThis.fetch.bind(globalThis) });
    return openVault(ownOptions(options), connection, (opening, makeSend) =>
      wasm.Vault.open(store, key.wasm, mode, opening, makeSend));
  }

  /**
   * Starts a new vault: like `open`, but its first sync rejects with ConflictError when the
   * store holds a vault for this key already, and publishes this device even with no records.
   */
  static create(options = {}) {
    return Vault.open({ ...options, mode: 'create' });
  }

  /**
   * The vault's devices known here (this one included): `{ id, label, lastPushMs, segments,
   * thisDevice, stale, retired }`; stale means silent for longer than `staleAfterDays`
   * (default 30).
   */
  devices({ staleAfterDays } = {}) {
    return call(() => this.#inner.devices(staleAfterDays));
  }
  /**
   * The versions of `key` known here, newest first: `{ value (undefined for a deletion),
   * device, timeMs }` (overwritten versions and concurrent writes that lost).
   */
  history(key) {
    return call(() => this.#inner.history(bytes(key, 'key')));
  }
  /** This device's label ('' when it has none). */
  get label() {
    return call(() => this.#inner.label);
  }
  /**
   * Lets the next sync push deletions past the mass-deletion guard (a push deleting more than
   * half of the live keys, and at least 10, otherwise rejects with ConflictError).
   */
  confirmDeletions() {
    call(() => this.#inner.confirmDeletions());
  }
  /**
   * Marks device `id` retired (from another device): tombstones stop waiting for it, and if it
   * syncs again it starts over under a new id. Said in this device's manifest at the next sync.
   */
  retire(id) {
    call(() => this.#inner.retire(String(id)));
  }

  /**
   * The identity of the person whose home this vault is: `{ public, fingerprint }`. Give
   * `public` to whoever shares a vault with them; compare `fingerprint` with them aloud.
   */
  identity() {
    return call(() => this.#inner.identity());
  }
  /**
   * The vaults this home made or accepted: `{ label, store, role, grantedBy, since }`;
   * `grantedBy` is the granter's fingerprint (null for a vault this person made), `since` ms
   * since the epoch. A vault made or accepted on another device of the home shows once the
   * home has synced.
   */
  shared() {
    return call(() => this.#inner.shared());
  }
  /**
   * Makes a new vault to share, in `store`, kept in this home (the vault `createShared` is
   * called on) as `label` with the role owner, and opens it (its first sync creates it).
   * `options` are `Vault.open`'s but `store`, `key` and `mode`. `fetch` and `timeoutMs`
   * default to this home's; its `credentials` and `signer` serve only a store on the home's own
   * service (the same endpoint and region): a store elsewhere gets only what is passed here,
   * else its requests go unsigned and reject with AuthError saying so. Sync the home too: its
   * other devices then know the vault.
   */
  async createShared(store, label, options = {}) {
    const vault = await openVault(ownOptions(options), connectionOf(options), (opening, makeSend) =>
      this.#inner.createShared(String(store), String(label), opening, makeSend));
    await this.flush();
    return vault;
  }
  /**
   * Opens the vault this home keeps as `label` (see `shared()`), with the home's role in it;
   * options as for `createShared`. The vault remembers this home, for `share`.
   */
  openShared(label, options = {}) {
    return openVault(ownOptions(options), connectionOf(options), (opening, makeSend) =>
      this.#inner.openShared(String(label), opening, makeSend));
  }
  /**
   * Grants this shared vault to the person whose public identity is `publicIdentity` (their
   * `identity().public`), with `role` ('read' by default, 'write' or 'owner'): one PUT into the
   * vault's folder. Resolves to the invitation text to send them. Rejects with AccessError when
   * this vault was not opened through its home (`createShared`, `openShared` or `accept`) or
   * the home does not own it; ConfigError for a bad identity or role.
   */
  share(publicIdentity, { role, signerUrl } = {}) {
    return callAsync(() => this.#inner.share(String(publicIdentity),
      role === undefined || role === null ? undefined : String(role),
      signerUrl === undefined || signerUrl === null ? undefined : String(signerUrl)));
  }
  /**
   * The people of this shared vault, as the statements read so far say: `{ fingerprint,
   * public, role ('read', 'write', 'owner' or 'revoked'), since (ms since the epoch),
   * grantedBy (the fingerprint of the owner who said so), mayWrite, pins }`; `pins` are a
   * revoked member's `[device id, segments]` that still count. Empty for a vault that is not
   * shared (not opened through its home).
   */
  members() {
    return call(() => this.#inner.members());
  }
  /**
   * Revokes the member whose fingerprint is `fingerprint` (as typed: case, dashes and spaces do
   * not matter): no request; the next sync publishes it, and from then on what their devices
   * write does not count and their own syncs reject with AccessError. Returns the member as
   * they were. Throws AccessError when this person is not an owner of the vault (or it is not
   * shared), ConfigError when no member has that fingerprint or it is the founder's or one's
   * own. They keep what they read, and the vault's key: revoke their bucket access too.
   */
  revoke(fingerprint) {
    const member = call(() => this.#inner.revoke(String(fingerprint)));
    this.#persistSoon();
    return member;
  }
  /**
   * Accepts an invitation with this home's identity: reads its grant (one GET in the
   * invitation's store, reached as `createShared` says: never with this home's credentials or
   * signer unless the store is on the home's own service),
   * keeps the vault in this home, and opens it (join). Options as for `createShared`, and
   * `grantedBy`: the granter's fingerprint as they told it out of band (the invitation alone
   * says who sent it): an invitation from anyone else rejects with AccessError before any
   * request. Rejects with AccessError when the invitation is for someone else, NotFoundError
   * when its grant is gone, ConfigError for a text that is not an invitation.
   */
  async accept(invitation, options = {}) {
    const { grantedBy, ...opening } = options;
    const vault = await openVault(ownOptions(opening), connectionOf(opening), (given, makeSend) =>
      this.#inner.accept(String(invitation), grantedBy == null ? undefined : String(grantedBy), given, makeSend));
    await this.flush();
    return vault;
  }

  /** @internal the abort signal of the running sync */
  get signal() {
    return this.#signal;
  }

  /** Sets `key` to `value`. The returned promise resolves once the write is in the storage. */
  put(key, value) {
    call(() => this.#inner.put(bytes(key, 'key'), bytes(value, 'value')));
    return this.#persistSoon();
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
  /** Deletes `key`. The returned promise resolves once the delete is in the storage. */
  delete(key) {
    call(() => this.#inner.delete(bytes(key, 'key')));
    return this.#persistSoon();
  }
  /** Live keys starting with `prefix`, sorted, as bytes. */
  keys(prefix = '') {
    return call(() => this.#inner.keys(bytes(prefix, 'prefix')));
  }
  /** Live keys decoded as UTF-8. */
  keyStrings(prefix = '') {
    return this.keys(prefix).map((k) => decoder.decode(k));
  }
  /**
   * Pulls and pushes. Resolves to a report; rejects with a BucketsyncError subclass, or with
   * `signal.reason` when `signal` aborts it (nothing is lost: the next sync resumes).
   */
  async sync({ signal } = {}) {
    signal?.throwIfAborted();
    this.#signal = signal;
    const cancel = new wasm.Cancel();
    const onAbort = () => cancel.cancel();
    signal?.addEventListener('abort', onAbort);
    let report;
    try {
      report = await this.#inner.sync(cancel);
    } catch (e) {
      await this.flush();
      if (signal?.aborted) throw signal.reason;
      throw toError(e);
    } finally {
      signal?.removeEventListener('abort', onAbort);
      this.#signal = undefined;
      cancel.free();
    }
    await this.flush();
    report.errors = report.errors.map((e) => toError(e));
    return report;
  }
  /**
   * Stores `source` as the file `key` (see index.d.ts): a Blob or File, a ReadableStream of
   * Uint8Array, bytes, or in Node a path. Resolves to a FileReport once its record is written
   * (and in the storage); pushed by the next sync.
   */
  async putFile(key, source, { onProgress, signal, packSize, size } = {}) {
    const k = bytes(key, 'key');
    positive(packSize, 'packSize', 1);
    positive(size, 'size', 0);
    signal?.throwIfAborted();
    const input = await openSource(source, size);
    const report = await this.#transfer(signal, fileProgress(onProgress), input, (send, progress, cancel, io) =>
      this.#inner.putFile(k, io.reader, input.size, input.declared, packSize, send, progress, cancel));
    await this.flush();
    return report;
  }

  /**
   * Stores many files in one upload (see index.d.ts): `files` is an iterable of
   * `{ key, data, size? }`, each `data` what putFile takes. Every source is checked (a path
   * stat'ed) before anything is sent, and opened only when its turn comes. Resolves to a
   * PutFilesReport once the records are in the storage.
   */
  async putFiles(files, { onProgress, signal, packSize } = {}) {
    positive(packSize, 'packSize', 1);
    signal?.throwIfAborted();
    const entries = [];
    for (const file of files) {
      if (file === null || typeof file !== 'object') throw new TypeError('putFiles(files): each file must be { key, data }');
      positive(file.size, 'size', 0);
      entries.push({ given: file.key, key: bytes(file.key, 'key'), source: await sourceOf(file.data, file.size, 'putFiles(files): data') });
    }
    // A file is done once read to its end or failed; what failed is its error's cause.
    const ended = (entry, failed, reason) => {
      entry.ended = true;
      return entry.opened?.end?.(failed, reason);
    };
    const causes = new Map();
    // At the end, a source opened and not ended was given up (the batch stopped, or the core
    // left its file out, say for a length other than declared): cancelled, as a failed putFile's.
    const io = {
      end: async (_failed, reason) => {
        for (const entry of entries) if (entry.opened && !entry.ended) await ended(entry, true, reason);
      },
    };
    const progress = onProgress && ((index, ...done) => onProgress(entries[index].given, progressOf(...done)));
    let raw;
    try {
      raw = await this.#transfer(signal, progress, io, (send, report, cancel, _io, live) => {
        const batch = entries.map((entry) => ({
          key: entry.key,
          size: entry.source.size,
          declared: entry.source.declared,
          reader: {
            read: () => live() ?? (async () => {
              entry.opened ??= entry.source.open();
              try {
                const result = await entry.opened.reader.read();
                if (result.done) await ended(entry, false);
                return result;
              } catch (e) {
                causes.set(entry.key.join(), e);
                await ended(entry, true, e);
                throw e;
              }
            })(),
          },
        }));
        return this.#inner.putFiles(batch, packSize, send, report, cancel);
      });
    } finally {
      await this.flush();
    }
    // Keyed by each key as given (a key given twice: the later one).
    const given = new Map(entries.map((entry) => [entry.key.join(), entry.given]));
    return {
      stored: new Map(raw.stored.map(([key, report]) => [given.get(key.join()), report])),
      failed: new Map(raw.failed.map(([key, e]) => [given.get(key.join()), toError(e, causes.get(key.join()))])),
      chunksUploaded: raw.chunksUploaded,
      chunksReused: raw.chunksReused,
      packs: raw.packs,
      bytesSent: raw.bytesSent,
      requests: raw.requests,
    };
  }

  /**
   * Reads the file `key`: into a Blob (no target), a WritableStream, or in Node a path (through
   * a partial file beside it, renamed into place once the whole file is read and checked).
   * Resolves to the Blob or `true`; to `null` or `false` when the key holds nothing.
   */
  async getFile(key, target, options) {
    if (options === undefined && isOptions(target)) [target, options] = [undefined, target];
    const { onProgress, signal, type } = options ?? {};
    const k = bytes(key, 'key');
    signal?.throwIfAborted();
    if (target === undefined || target === null) {
      const parts = [];
      const found = await this.#get(k, { write: (chunk) => { parts.push(chunk); } }, signal, onProgress);
      return found ? new Blob(parts, type === undefined ? undefined : { type }) : null;
    }
    if (globalThis.WritableStream && target instanceof WritableStream) return this.#getToStream(k, target, signal, onProgress);
    if (typeof target === 'string' || target instanceof URL) return this.#getToPath(k, target, signal, onProgress);
    throw new TypeError('getFile(key, target): target must be a WritableStream or (in Node) a path; ' +
      'leave it out for a Blob');
  }

  async #getToStream(key, stream, signal, onProgress) {
    const writer = stream.getWriter();
    let found;
    try {
      found = await this.#get(key, writer, signal, onProgress);
    } catch (e) {
      await writer.abort(e).catch(() => {});
      writer.releaseLock();
      throw e;
    }
    if (!found) {
      writer.releaseLock();
      return false;
    }
    try {
      await writer.close();
    } catch (e) {
      throw new ConfigError(`writing the file failed: closing the stream: ${e?.message ?? e}`, 'config', { cause: e });
    }
    return true;
  }

  async #getToPath(key, target, signal, onProgress) {
    const fs = nodeFs();
    if (!fs) throw new TypeError('a path as the target needs Node; in a browser pass a WritableStream, or nothing for a Blob');
    const path = nodeModule('node:path');
    const file = target instanceof URL ? nodeModule('node:url').fileURLToPath(target) : target;
    // The core names the partial file, resumes from what it holds and puts it in place.
    let opening;
    const local = (e) => new ConfigError(`writing ${file} failed: ${e?.message ?? e}`, 'config', { cause: e });
    let partial;
    try {
      return await this.#transfer(signal, fileProgress(onProgress), {}, (send, progress, cancel, _io, live) => {
        const open = (name) => (opening = nodePartial(fs, path, path.join(path.dirname(file), name), file, live));
        return this.#inner.getFileThrough(key, path.basename(file), open, send, progress, cancel);
      });
    } catch (e) {
      partial = await opening?.catch(() => undefined);
      if (!partial && opening) throw local(await opening.then(() => e, (failed) => failed));
      // Stopped once the whole file, read and checked, was being put in place: it is there.
      if (await partial?.committed()) return true;
      if (partial?.failure && e?.category === 'config') throw local(partial.failure);
      throw e;
    } finally {
      partial ??= await opening?.catch(() => undefined);
      await partial?.close();
    }
  }

  #get(key, writer, signal, onProgress) {
    return this.#transfer(signal, fileProgress(onProgress), { writer }, (send, progress, cancel, io) =>
      this.#inner.getFileThrough(key, '', () => heldNothing(io.writer), send, progress, cancel));
  }

  /**
   * Runs one transfer: `start(send, progress, cancel, io, live)` calls the wasm export (`live()`:
   * a rejected promise once stopped, for sources to return instead of reading). `signal` or a
   * throwing `onProgress` (called with what the wasm side reports) stops it (the wasm side
   * drops it where it stands); it then rejects with the signal's reason or what onProgress
   * threw. Otherwise a failure is the core's error as its class, with what the source or
   * target threw as its `cause`.
   */
  async #transfer(signal, onProgress, io, start) {
    const stop = new AbortController();
    const onAbort = () => stop.abort(signal.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    // The core's cancel, cancelled when stopped: the wasm side drops the transfer at once.
    const cancel = new wasm.Cancel();
    stop.signal.addEventListener('abort', () => cancel.cancel(), { once: true });
    if (signal?.aborted) onAbort(); // while the source was opened
    let failure;
    const note = (e) => {
      failure ??= e;
      throw e;
    };
    // Once stopped, the source and target refuse: a transfer that need not wait for anything
    // else still stops at its next read or write.
    const live = () => (stop.signal.aborted ? Promise.reject(stop.signal.reason) : undefined);
    const watched = {
      reader: io.reader && { read: () => live() ?? io.reader.read().catch(note) },
      writer: io.writer && { write: (chunk) => live() ?? Promise.resolve(io.writer.write(chunk)).catch(note) },
    };
    const progress = (...reported) => {
      if (!onProgress || stop.signal.aborted) return;
      try {
        onProgress(...reported);
      } catch (e) {
        stop.abort(e);
      }
    };
    try {
      const result = await start(this.#transport(() => stop.signal), progress, cancel, watched, live);
      await io.end?.(false);
      return result;
    } catch (e) {
      const error = stop.signal.aborted ? stop.signal.reason : toError(e, failure);
      await io.end?.(true, error);
      throw error;
    } finally {
      signal?.removeEventListener('abort', onAbort);
      cancel.free();
    }
  }

  /**
   * What the file under `key` is, without fetching it: `{ size, chunks, packs, contentHash,
   * inline }`, or null when the key holds nothing. ConfigError when it holds a record that is
   * not a file.
   */
  fileInfo(key) {
    const info = call(() => this.#inner.fileInfo(bytes(key, 'key')));
    if (info) info.inline = info.chunks === 0;
    return info;
  }

  /**
   * Opens the file `key` for reading at any offset: a Blob-like VaultFile (`size`, `slice()`,
   * `stream()`, `bytes()`, `arrayBuffer()`, `text()`) that fetches only the ranges read, each
   * checked, of the version stored now (whatever a sync brings in later). null when the key
   * holds nothing; ConfigError when it holds a record that is not a file.
   */
  openFile(key) {
    const inner = call(() => this.#inner.openFile(bytes(key, 'key')));
    return inner ? new VaultFile(new Reads(inner, this.#transport), 0, inner.size, '') : null;
  }

  /** Resolves once every change so far is in the storage. */
  flush() {
    this.#pending = undefined;
    const writes = this.#inner.takeStateWrites();
    if (this.#storage && writes.length > 0) {
      this.#saving = this.#saving.catch(() => {}).then(() => this.#storage.apply(writes));
    }
    return this.#saving;
  }
  /** Writes of one turn of the event loop go to the storage together. */
  #persistSoon() {
    this.#pending ??= Promise.resolve().then(() => this.flush());
    return this.#pending;
  }
  /**
   * Saves, lets go of the state's lock and closes; later calls throw ConfigError. A background
   * sync stops, and every `events()` iterator ends.
   */
  async close() {
    try {
      const ended = this.stopAutoSync();
      call(() => this.#inner.close());
      await ended;
      await this.flush();
    } finally {
      this.#inner.endListeners();
      this.#release?.();
      this.#release = undefined;
    }
  }

  /**
   * Syncs in the background until `stopAutoSync()` or `close()` (see index.d.ts): the core's
   * loop on this page's event loop, under a Web Lock per local state, told of `online` /
   * `offline` and `visibilitychange`. Throws ConfigError for a bad option or a closed vault,
   * ConflictError when one runs (or waits) already. Resolves to true once the loop runs, or
   * false when it was stopped before it could.
   */
  startAutoSync({ interval, onEvent, debounce, fullSyncInterval, backgroundInterval } = {}) {
    if (onEvent !== undefined && onEvent !== null && typeof onEvent !== 'function') {
      throw new TypeError('onEvent must be a function');
    }
    if (this.#auto) throw new ConflictError('a background sync is already running on this vault', 'conflict');
    const settings = call(() => this.#inner.autoSyncSettings(interval, debounce, fullSyncInterval, backgroundInterval));
    let started;
    const auto = {
      onEvent,
      stop: new AbortController(),
      started: new Promise((resolve) => { started = resolve; }),
    };
    this.#auto = auto;
    const previous = this.#autoEnded;
    auto.ended = (async () => {
      try {
        await previous;
        if (auto.stop.signal.aborted) return;
        const run = () => this.#runAutoSync(auto, settings, started);
        const locks = globalThis.navigator?.locks;
        if (!locks) return await run();
        // One loop per vault and local state, whichever tab holds it: the state lock's name
        // (or, with no storage, the device id) under the vault's id.
        const state = this.#storage ? this.#storage.name ?? 'state' : this.device;
        const name = `bucketsync:auto-sync:${this.#vaultId}:${state}`;
        await locks.request(name, { signal: auto.stop.signal }, run).catch((e) => {
          if (!auto.stop.signal.aborted) throw e;
        });
      } catch (e) {
        reportError(toError(e));
      } finally {
        settings.free();
        started(false);
        if (this.#auto === auto) this.#auto = undefined;
      }
    })();
    this.#autoEnded = auto.ended;
    return auto.started;
  }

  /** Runs the loop (its lock held); resolves when it ends. */
  async #runAutoSync(auto, settings, started) {
    if (auto.stop.signal.aborted) return;
    // The core calls onEvent and every events() iterator (a listener that throws is
    // reported and breaks nothing), and says when keys changed so that they are saved.
    const ended = this.#inner.autoSync(
      settings,
      this.#transport(() => auto.stop.signal),
      auto.onEvent ?? undefined,
      () => { this.#persistSoon(); },
      () => { this.#persistSoon(); },
      reportError,
    );
    const unwatch = watchPlatform((what) => this.notify(what));
    started(true);
    try {
      await ended;
    } catch (e) {
      if (!auto.stop.signal.aborted) throw e;
    } finally {
      unwatch();
      await this.flush().catch(reportError);
    }
  }

  /**
   * Stops the background sync: a sync it runs is abandoned at once (safely: the next one
   * resumes it), its requests are aborted, and no event is delivered after this call. A loop
   * still waiting for its lock never starts. Resolves once it has ended and its changes are
   * saved. Does nothing when none runs.
   */
  stopAutoSync() {
    const auto = this.#auto;
    if (auto) {
      this.#auto = undefined;
      this.#inner.stopAutoSync();
      auto.stop.abort(new DOMException('the background sync was stopped', 'AbortError'));
    }
    return this.#autoEnded.then(() => {});
  }

  /** Whether a background sync runs (or waits for its lock). */
  get autoSyncing() {
    return this.#auto !== undefined;
  }

  /**
   * Tells the background sync what the app knows: 'network-lost', 'network-back',
   * 'background', 'foreground' or 'changed' (new credentials: try again at once, even after an
   * auth error). In a browser, startAutoSync already listens to online/offline and
   * visibilitychange. Ignored when none runs; ConfigError for another value.
   */
  notify(what) {
    call(() => this.#inner.notify(String(what)));
  }

  /**
   * `for await (const event of vault.events())`: the background sync's events, from when the
   * loop starts iterating; leaving the loop stops listening. Ends when the vault closes.
   */
  events() {
    const inner = this.#inner;
    return {
      [Symbol.asyncIterator]() {
        const queue = [];
        const waiting = [];
        let done = false;
        const listener = (event, end) => {
          if (done) return;
          if (end) {
            finish();
          } else if (waiting.length > 0) {
            waiting.shift()({ value: event, done: false });
          } else {
            queue.push(event);
          }
        };
        let id;
        const finish = () => {
          done = true;
          inner.removeListener(id);
          queue.length = 0;
          for (const resolve of waiting.splice(0)) resolve({ value: undefined, done: true });
          return Promise.resolve({ value: undefined, done: true });
        };
        id = inner.addListener(listener);
        return {
          next() {
            if (queue.length > 0) return Promise.resolve({ value: queue.shift(), done: false });
            if (done) return Promise.resolve({ value: undefined, done: true });
            return new Promise((resolve) => { waiting.push(resolve); });
          },
          return: finish,
          [Symbol.asyncIterator]() {
            return this;
          },
        };
      },
    };
  }

  /**
   * Every record as JSON Lines, one a line in key order (see the README for the fields);
   * `history`: each key's earlier versions too. Files (putFile) are left out.
   */
  exportRecords({ history = false } = {}) {
    return call(() => this.#inner.exportRecords(Boolean(history)));
  }

  /**
   * Merges JSON Lines (a string or their UTF-8 bytes) into the vault: per key the newest line
   * is written unless the vault holds a version at least as new. Resolves to `{ lines,
   * imported, deleted, unchanged, older, history }` once the writes are in the storage; a
   * malformed line rejects with ConfigError naming it, and nothing is imported.
   */
  async importRecords(input) {
    if (typeof input !== 'string' && !(input instanceof Uint8Array) && !(input instanceof ArrayBuffer)) {
      throw new TypeError('importRecords takes a string or a Uint8Array of JSON Lines');
    }
    const report = call(() => this.#inner.importRecords(bytes(input, 'input')));
    await this.flush();
    return report;
  }
  /** A whole snapshot of the local state as bytes (for `Vault.open({ state })`, backups). */
  exportState() {
    const snapshot = call(() => this.#inner.exportState());
    this.#persistSoon();
    return snapshot;
  }
  /** The vault's id (32 hex digits): its folder in the store, what a signer's member token names. */
  get vaultId() {
    return this.#vaultId;
  }

  get device() {
    return call(() => this.#inner.device);
  }
  get unpushed() {
    return call(() => this.#inner.unpushed);
  }
}

/** Reports what a listener threw without throwing (the page's error event; stderr in Node). */
function reportError(e) {
  if (typeof globalThis.reportError === 'function') globalThis.reportError(e);
  else console.error(e);
}

/**
 * Tells `notify` what the platform knows, while a background sync runs: `online` / `offline`
 * (starting offline if `navigator.onLine` says so) in pages and workers, `visibilitychange`
 * (a hidden page is in the background) in pages. Returns the function that stops listening.
 */
function watchPlatform(notify) {
  const scope = globalThis;
  const undo = [];
  const on = (target, type, listener) => {
    target.addEventListener(type, listener);
    undo.push(() => target.removeEventListener(type, listener));
  };
  if (typeof scope.addEventListener === 'function' && typeof scope.navigator?.onLine === 'boolean') {
    on(scope, 'online', () => notify('network-back'));
    on(scope, 'offline', () => notify('network-lost'));
    if (!scope.navigator.onLine) notify('network-lost');
  }
  const doc = scope.document;
  if (typeof doc?.addEventListener === 'function' && typeof doc.visibilityState === 'string') {
    const visibility = () => notify(doc.visibilityState === 'hidden' ? 'background' : 'foreground');
    on(doc, 'visibilitychange', visibility);
    if (doc.visibilityState === 'hidden') visibility();
  }
  return () => {
    for (const u of undo) u();
  };
}

/** How much a VaultFile asks for per read (the core fetches at least 4 MiB and keeps it). */
const READ_PIECE = 1 << 20;

/** The reads of one opened file, one at a time (each a wasm call that fetches what it needs). */
class Reads {
  #file;
  #transport;
  #queue = Promise.resolve();
  constructor(file, transport) {
    this.#file = file;
    this.#transport = transport;
  }
  /** Up to `max` bytes from `offset`; rejects with `signal.reason` when it aborts. */
  read(offset, max, signal) {
    const run = async () => {
      signal?.throwIfAborted();
      const stop = new AbortController();
      const cancel = new wasm.Cancel();
      const onAbort = () => { stop.abort(signal.reason); cancel.cancel(); };
      signal?.addEventListener('abort', onAbort, { once: true });
      try {
        return await this.#file.readAt(offset, max, this.#transport(() => stop.signal), cancel);
      } catch (e) {
        throw stop.signal.aborted ? stop.signal.reason : toError(e);
      } finally {
        signal?.removeEventListener('abort', onAbort);
        cancel.free();
      }
    };
    const result = this.#queue.then(run, run);
    this.#queue = result.catch(() => {});
    return result;
  }
}

/**
 * A file opened with `vault.openFile(key)`, or a slice of one: like a Blob, but its bytes are
 * fetched (and checked against their chunk ids) only when read.
 */
export class VaultFile {
  #reads;
  #start;
  #end;
  #type;
  constructor(reads, start, end, type) {
    if (!(reads instanceof Reads)) throw new TypeError('VaultFile comes from vault.openFile(key)');
    this.#reads = reads;
    this.#start = start;
    this.#end = end;
    this.#type = type;
  }
  get size() {
    return this.#end - this.#start;
  }
  get type() {
    return this.#type;
  }
  /** The bytes `start` to `end` of this one, as Blob.slice takes them (negative: from the end). */
  slice(start = 0, end = this.size, contentType = '') {
    const at = (value) => {
      const n = Math.trunc(Number(value)) || 0;
      return n < 0 ? Math.max(this.size + n, 0) : Math.min(n, this.size);
    };
    const from = at(start);
    const to = Math.max(at(end), from);
    const type = /^[\x20-\x7e]*$/.test(String(contentType)) ? String(contentType).toLowerCase() : '';
    return new VaultFile(this.#reads, this.#start + from, this.#start + to, type);
  }
  /** All of its bytes. */
  async bytes({ signal } = {}) {
    const out = new Uint8Array(this.size);
    for (let at = 0; at < out.length;) {
      const piece = await this.#read(at, Math.min(out.length - at, READ_PIECE), signal);
      out.set(piece, at);
      at += piece.length;
    }
    return out;
  }
  async arrayBuffer(options) {
    return (await this.bytes(options)).buffer;
  }
  /** Its bytes decoded as UTF-8. */
  async text(options) {
    return decoder.decode(await this.bytes(options));
  }
  /** Its bytes as a ReadableStream, fetched as the stream is read. */
  stream({ signal } = {}) {
    let at = 0;
    return new ReadableStream({
      pull: async (controller) => {
        if (at >= this.size) {
          controller.close();
          return;
        }
        const piece = await this.#read(at, Math.min(this.size - at, READ_PIECE), signal);
        at += piece.length;
        controller.enqueue(piece);
        if (at >= this.size) controller.close();
      },
    }, { highWaterMark: 0 });
  }
  async #read(at, max, signal) {
    const piece = await this.#reads.read(this.#start + at, max, signal);
    if (piece.length === 0) throw new CorruptError('the file ended before its size', 'corrupt');
    return piece;
  }
}

function positive(value, what, min) {
  if (value !== undefined && !(Number.isSafeInteger(value) && value >= min)) {
    throw new TypeError(`${what} must be an integer >= ${min} (bytes)`);
  }
}

/** A FileProgress from the four numbers the wasm side reports. */
function progressOf(bytesDone, bytesTotal, requestsDone, requestsTotal) {
  return { bytesDone, bytesTotal, requestsDone, requestsTotal };
}

/** `onProgress` as the wasm side calls it (with the four numbers). */
function fileProgress(onProgress) {
  return onProgress && ((...numbers) => onProgress(progressOf(...numbers)));
}

/** An options object rather than getFile's target. */
function isOptions(value) {
  if (value === null || typeof value !== 'object') return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * What putFile reads: `{ reader, size, declared, end(failed, reason) }`, where `reader.read()`
 * resolves to `{ done, value }` as a ReadableStreamDefaultReader's does, and `declared` says
 * that `size` is a promise the core holds the source to (a Blob's, bytes', a size the app gave)
 * rather than a hint (a path's, which may grow while it is read, as in every binding).
 */
async function openSource(source, size) {
  const checked = await sourceOf(source, size, 'putFile(key, source): source');
  return { ...checked, ...checked.open() };
}

/**
 * `source` checked (a path stat'ed) but not opened yet: `{ size, declared, open() }`, where
 * `open()` gives `{ reader, end(failed, reason) }` (see openSource).
 */
async function sourceOf(source, size, what) {
  if (globalThis.Blob && source instanceof Blob) {
    return { size: source.size, declared: true, open: () => streamSource(source.stream()) };
  }
  if (globalThis.ReadableStream && source instanceof ReadableStream) {
    return { size, declared: size !== undefined, open: () => streamSource(source) };
  }
  if (source instanceof ArrayBuffer || ArrayBuffer.isView(source)) {
    const data = source instanceof ArrayBuffer
      ? new Uint8Array(source)
      : new Uint8Array(source.buffer, source.byteOffset, source.byteLength);
    const open = () => {
      let given = false;
      const read = async () => {
        if (given) return { done: true, value: undefined };
        given = true;
        return { done: false, value: data };
      };
      return { reader: { read } };
    };
    return { size: data.length, declared: true, open };
  }
  if (typeof source === 'string' || source instanceof URL) {
    const fs = nodeModule('node:fs');
    if (!fs) {
      throw new TypeError('a path as the source needs Node; in a browser pass a Blob or File, a ReadableStream ' +
        'or bytes (a string is a path: to store text, pass new TextEncoder().encode(text))');
    }
    let stat;
    try {
      stat = await fs.promises.stat(source);
    } catch (e) {
      throw new ConfigError(`reading the source failed: ${e.message}`, 'config', { cause: e });
    }
    // The core's pre-check (bucketsync::files::check_paths), on Node's file system.
    if (stat.isDirectory()) throw new ConfigError(`${source} is a folder, not a file`, 'config');
    if (!stat.isFile()) throw new ConfigError(`${source} is not a regular file`, 'config');
    const open = () => {
      // Node's own file stream; its async iterator's next() reads as a stream reader's read().
      const stream = fs.createReadStream(source, { highWaterMark: 1 << 20 });
      const chunks = stream[Symbol.asyncIterator]();
      return { reader: { read: () => chunks.next() }, end: () => stream.destroy() };
    };
    return { size: stat.size, declared: false, open };
  }
  throw new TypeError(`${what} must be a Blob or File, a ReadableStream of Uint8Array, ` +
    'a Uint8Array or ArrayBuffer, or (in Node) a path');
}

/** A stream's reader; cancelled (with the reason) when the transfer fails, else let go. */
function streamSource(stream) {
  const reader = stream.getReader();
  return {
    reader,
    end: async (failed, reason) => {
      if (failed) await reader.cancel(reason).catch(() => {});
      reader.releaseLock();
    },
  };
}

/**
 * What an invitation says, without any request: `{ store, vaultId, grantedBy, signer }`. Throws
 * ConfigError for text that is not an invitation. Nothing in it is verified yet.
 */
export async function invitationInfo(invitation) {
  await init();
  return call(() => wasm.invitationInfo(String(invitation)));
}

/** A presigned URL for one request, valid for `expiresSeconds`: what an auth service hands out. */
export async function presign({ method, url, credentials, region = 'us-east-1', expiresSeconds = 900 }) {
  await init();
  return call(() => wasm.presign(method, url, credentials.accessKeyId, credentials.secretAccessKey,
    credentials.sessionToken, region, expiresSeconds));
}

/**
 * A `signer` backed by a presigning service (`bucketsync --store URL signer --listen ADDR
 * --token-file F`): each request's method and URL are POSTed to `url` (the service's `/sign`)
 * with `Authorization: Bearer <token>`, and the presigned URL it answers is used. The page holds
 * no S3 key, only the token. The service signs what the engine sends under the vault's prefix
 * (GET, PUT, HEAD, listings, and the DELETEs and multipart POSTs of collection and big packs);
 * a request it refuses (another bucket, a key outside the prefix, a DELETE of anything but a
 * segment, checkpoint or pack) throws an Error carrying the service's reason, and that request
 * fails as a network error would.
 */
export function remoteSigner(url, token) {
  return async ({ method, url: target }) => {
    const response = await fetch(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ method, url: target }),
      // No `cache: 'no-store'` here: with it Chromium skips its CORS preflight cache and sends
      // an OPTIONS before every POST (the service answers `Cache-Control: no-store` anyway).
      signal: AbortSignal.timeout(30000),
    });
    const answer = await response.json().catch(() => undefined);
    if (!response.ok || typeof answer?.url !== 'string') {
      const why = answer?.error ?? `HTTP ${response.status}`;
      throw new Error(`the signer at ${url} refused ${method}: ${why} (${response.status})`);
    }
    return { url: answer.url, headers: answer.headers ?? [] };
  };
}

/** SigV4 headers for a request the app makes itself (e.g. setting the bucket's CORS rule). */
export async function signRequest({ method, url, headers = [], body = new Uint8Array(), credentials, region = 'us-east-1' }) {
  await init();
  return call(() => wasm.signRequest(method, url, headers, bytes(body, 'body'), credentials.accessKeyId,
    credentials.secretAccessKey, credentials.sessionToken, region));
}

/**
 * Keeps the state in IndexedDB (browsers): the snapshot under `key` in the `state` store, the
 * journal as chunks in the `journal` store, each batch of writes in one transaction with
 * `durability: 'strict'`. Asks the browser to keep the site's storage (`navigator.storage.persist()`);
 * a browser that evicted it anyway comes back as a new device, never as an old one.
 */
export function indexedDbStorage(name = 'bucketsync', key = 'state') {
  const open = () => new Promise((resolve, reject) => {
    const request = indexedDB.open(name, 2);
    request.onupgradeneeded = () => {
      const db = request.result;
      if (!db.objectStoreNames.contains('state')) db.createObjectStore('state');
      if (!db.objectStoreNames.contains('journal')) db.createObjectStore('journal');
    };
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
  const chunks = IDBKeyRange.bound([key, 0], [key, Infinity]);
  const run = async (mode, op) => {
    const db = await open();
    return new Promise((resolve, reject) => {
      const tx = db.transaction(['state', 'journal'], mode, { durability: 'strict' });
      let result;
      Promise.resolve(op(tx.objectStore('state'), tx.objectStore('journal'), (r) => { result = r; }))
        .catch((e) => { try { tx.abort(); } catch { /* already done */ } reject(e); });
      tx.oncomplete = () => { db.close(); resolve(result); };
      tx.onerror = () => { db.close(); reject(tx.error); };
      tx.onabort = () => { db.close(); reject(tx.error); };
    });
  };
  const request = (r) => new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
  let persisted;
  return {
    name: `${name}/${key}`,
    async load() {
      persisted ??= globalThis.navigator?.storage?.persist?.().catch(() => false);
      return run('readonly', async (state, journal, done) => {
        const snapshot = await request(state.get(key));
        const parts = await request(journal.getAll(chunks));
        done(snapshot === undefined ? undefined : { snapshot, journal: concat(parts) });
      });
    },
    async apply(writes) {
      await run('readwrite', async (state, journal) => {
        let next = ((await request(journal.getAllKeys(chunks))).at(-1)?.[1] ?? -1) + 1;
        for (const w of writes) {
          if (w.snapshot) {
            journal.delete(chunks);
            state.put(w.snapshot, key);
            journal.put(w.journal, [key, 0]);
            next = 1;
          } else if (w.append) {
            journal.put(w.append, [key, next++]);
          } else if (w.truncate !== undefined) {
            const all = concat(await request(journal.getAll(chunks))).subarray(0, w.truncate);
            journal.delete(chunks);
            journal.put(all, [key, 0]);
            next = 1;
          }
        }
      });
    },
  };
}

function concat(parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * The state files this process holds, or is taking, locked (their lock files' paths): one set
 * for the whole process, even if two copies of this package are loaded.
 */
const heldLocks = (globalThis[Symbol.for('bucketsync.heldLocks')] ??= new Set());

/**
 * A writer (a stream's, or a Blob's parts) as what the core reads a file into: like a partial
 * file that holds nothing yet, which its caller finishes (closes the stream, makes the Blob).
 */
const heldNothing = (writer) => ({
  write: (chunk) => writer.write(chunk),
  read: async () => new Uint8Array(0),
  cut: async () => {},
  commit: async () => {},
  discard: async () => {},
});

/** The partial files of reads to paths this process has open (Node has no file lock). */
const partialsOpen = new Set();
let freshPartials = 0;

/**
 * The partial file at `at` of a read to the Node path `file`, as the core's `PartialTarget`:
 * opened as an interrupted read left it, or created. `read` goes on from where it stopped,
 * `cut` sets where the writes go on from, `commit` syncs it and renames it to `file`, then
 * removes what reads of other versions of the file left beside it; it is not begun once
 * `live()` says the read was stopped. When another read of this process holds `at`, a fresh
 * file of its own is used instead (removed unless put in place). The first failure of a method
 * is kept as `failure`.
 */
async function nodePartial(fs, path, at, file, live) {
  let handle;
  const fresh = partialsOpen.has(at);
  if (fresh) at = path.join(path.dirname(at), `.${path.basename(file)}.${process.pid}-${freshPartials++}.part`);
  // Taken before the first await: a read that starts meanwhile sees it held.
  partialsOpen.add(at);
  try {
    if (fresh) {
      handle = await fs.open(at, 'wx+');
    } else {
      handle = await fs.open(at, 'r+').catch((e) => {
        if (e?.code !== 'ENOENT') throw e;
        return fs.open(at, 'w+');
      });
    }
  } catch (e) {
    partialsOpen.delete(at);
    throw e;
  }
  let readAt = 0;
  let writeAt = 0;
  let committing;
  const partial = {
    failure: undefined,
    async read(max) {
      const buf = new Uint8Array(max);
      const { bytesRead } = await handle.read(buf, 0, max, readAt);
      readAt += bytesRead;
      return buf.subarray(0, bytesRead);
    },
    async cut(len) {
      await handle.truncate(len);
      writeAt = len;
    },
    async write(chunk) {
      for (let done = 0; done < chunk.length;) {
        const { bytesWritten } = await handle.write(chunk, done, chunk.length - done, writeAt);
        done += bytesWritten;
        writeAt += bytesWritten;
      }
    },
    commit() {
      // Not begun once the read was stopped (an abort, or onProgress throwing at the end).
      const stopped = live();
      if (stopped) return stopped;
      committing = (async () => {
        await handle.sync();
        await partial.close();
        await fs.rename(at, file);
        await removeStalePartials(fs, path, file, at);
      })();
      return committing;
    },
    async discard() {
      await partial.close();
      await fs.rm(at, { force: true });
    },
    /** Whether `commit` put the file in place (waiting for one under way). */
    committed: () => (committing ? committing.then(() => true, () => false) : Promise.resolve(false)),
    /** Closes it (a fresh one not put in place is removed); the name is free again. */
    async close() {
      const open = handle;
      handle = undefined;
      await open?.close().catch(() => {});
      if (open && fresh && !committing) await fs.rm(at, { force: true }).catch(() => {});
      partialsOpen.delete(at);
    },
  };
  for (const name of ['read', 'cut', 'write', 'commit', 'discard']) {
    const method = partial[name];
    partial[name] = (...args) => Promise.resolve(method(...args)).catch((e) => {
      partial.failure ??= e;
      throw e;
    });
  }
  return partial;
}

/**
 * Removes the partial files that interrupted reads of other versions of `file` left beside
 * it (`.<name>.<16 hex digits>.part`, the core's names), but for `kept` and those a read of
 * this process has open. Best effort.
 */
async function removeStalePartials(fs, path, file, kept) {
  const folder = path.dirname(file);
  const prefix = `.${path.basename(file)}.`;
  let names;
  try {
    names = await fs.readdir(folder);
  } catch {
    return;
  }
  for (const name of names) {
    const tag = name.startsWith(prefix) && name.endsWith('.part') ? name.slice(prefix.length, -5) : '';
    const at = path.join(folder, name);
    if (/^[0-9a-f]{16}$/.test(tag) && at !== kept && !partialsOpen.has(at)) {
      await fs.rm(at, { force: true }).catch(() => {});
    }
  }
}

const pause = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

/** Who this process is, as a lock file names it. */
function lockHolder() {
  const host = nodeModule('node:os')?.hostname() ?? 'unknown';
  return wasm.lockHolderText(process.pid, host, new Date().toISOString());
}

/**
 * Whether the holder that `text` names is gone: the core's rule (`io::state_lock`), which
 * native processes (Python, the command line, Swift/Kotlin) follow too.
 */
function lockIsStale(text, ageMs, ownIsGone) {
  const host = nodeModule('node:os')?.hostname() ?? 'unknown';
  return wasm.lockIsStale(text, ageMs, host, process.pid, ownIsGone, (pid) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch (e) {
      return e.code !== 'ESRCH';
    }
  });
}

/** A file's text (trimmed) and age in ms, or undefined when it does not exist. */
async function readLock(fs, path) {
  try {
    const [text, stat] = await Promise.all([fs.readFile(path, 'utf8'), fs.stat(path)]);
    return { text: text.trim(), ageMs: Date.now() - stat.mtimeMs };
  } catch (e) {
    if (e.code === 'ENOENT') return undefined;
    throw e;
  }
}

/**
 * Removes the stale lock `lockPath`, whose text was `stale`, one taker at a time: under a guard
 * file created exclusively, the lock is read again and removed only if it is still that one, so
 * a lock someone took meanwhile is never removed. A guard left by a taker that died is stale
 * like a lock. Resolves to whether the lock file is gone now.
 */
async function takeOver(fs, lockPath, stale) {
  const guard = `${lockPath}.takeover`;
  let handle;
  try {
    handle = await fs.open(guard, 'wx');
  } catch (e) {
    if (e.code !== 'EEXIST') throw e;
    const other = await readLock(fs, guard);
    if (other && lockIsStale(other.text, other.ageMs, false)) await fs.unlink(guard).catch(() => {});
    return (await readLock(fs, lockPath)) === undefined;
  }
  try {
    await handle.writeFile(lockHolder());
    const now = await readLock(fs, lockPath);
    if (now?.text === stale) await fs.unlink(lockPath).catch(() => {});
  } finally {
    await handle.close();
    await fs.unlink(guard).catch(() => {});
  }
  return (await readLock(fs, lockPath)) === undefined;
}

/**
 * Takes the lock file `lockPath` for this process (created exclusively, naming the holder) and
 * returns the function that lets go of it. A lock of this process that another vault holds,
 * or of a live process, raises LockedError naming it (or is waited for with `wait`); one left
 * by a process of this host that no longer runs is taken over.
 */
async function lockFile(lockPath, statePath, wait) {
  await init(); // the protocol's rules are the core's
  const fs = nodeFs();
  for (;;) {
    if (!heldLocks.has(lockPath)) {
      // Reserved before the file exists: another vault of this process waits for it.
      heldLocks.add(lockPath);
      const mine = lockHolder();
      let created = false;
      try {
        const handle = await fs.open(lockPath, 'wx');
        created = true;
        try {
          await handle.writeFile(mine);
          await handle.sync();
        } finally {
          await handle.close();
        }
        let released = false;
        return () => {
          if (released) return;
          released = true;
          heldLocks.delete(lockPath);
          // Synchronous, so nothing of this process runs between the check and the removal;
          // a lock that is no longer ours (taken over) is left alone.
          const fsSync = nodeModule('node:fs');
          try {
            if (fsSync.readFileSync(lockPath, 'utf8').trim() === mine) fsSync.unlinkSync(lockPath);
          } catch { /* already gone */ }
        };
      } catch (e) {
        heldLocks.delete(lockPath);
        // A lock file made but not written (a full disk) would name nobody: it goes.
        if (created) await fs.unlink(lockPath).catch(() => {});
        if (e.code !== 'EEXIST') throw e;
      }
    }
    let holder = heldLocks.has(lockPath) ? `another Vault of this process (${process.pid})` : '';
    if (!holder) {
      const found = await readLock(fs, lockPath);
      if (found === undefined) continue; // let go of just now: try again
      // Taken over: try again at once. One that could not remove it (another taker's guard
      // stands) is waited for like a holder, so that this never spins.
      if (lockIsStale(found.text, found.ageMs, true) && await takeOver(fs, lockPath, found.text)) continue;
      holder = found.text || 'a process that has not named itself yet';
    }
    if (!wait) {
      throw new LockedError(
        `the local state ${statePath} is locked by ${holder} (one writer per device): close that ` +
          'Vault first, open with { lock: "wait" }, or with another storage as a new device',
        'locked',
      );
    }
    await pause(100);
  }
}

/**
 * Keeps the state in files (Node): the snapshot at `path` and the journal at
 * `path + '.journal'`, locked by `path + '.lock'` while a Vault holds them (within this process
 * and across processes of this host; a lock left by a process that no longer runs is taken
 * over). Each batch of writes is fsynced before its put resolves; a snapshot is written to a
 * temporary file, fsynced, renamed into place, and the folder fsynced.
 */
export function fileStorage(path) {
  const fs = () => {
    const found = nodeFs();
    if (!found) throw new ConfigError('fileStorage needs Node 20.16 or later (in a browser: indexedDbStorage)', 'config');
    return found;
  };
  const journalPath = `${path}.journal`;
  const syncFolder = async (file) => {
    const dir = nodeModule('node:path').dirname(file);
    let handle;
    try {
      handle = await fs().open(dir, 'r');
      await handle.sync();
    } catch {
      // Not every platform can open a folder (Windows): the rename is as durable as it allows.
    } finally {
      await handle?.close();
    }
  };
  const replace = async (file, bytes) => {
    const { writeFile, rename, open, unlink } = fs();
    const tmp = `${file}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
    try {
      await writeFile(tmp, bytes);
      const handle = await open(tmp, 'r+');
      try { await handle.sync(); } finally { await handle.close(); }
      await rename(tmp, file);
    } catch (e) {
      await unlink(tmp).catch(() => {});
      throw e;
    }
    await syncFolder(file);
  };
  return {
    name: path,
    lock(wait) {
      const { mkdir } = fs();
      const dir = nodeModule('node:path').dirname(path);
      return mkdir(dir, { recursive: true }).then(() => lockFile(nodeModule('node:path').resolve(`${path}.lock`),
        path, wait));
    },
    async load() {
      const { readFile } = fs();
      const read = async (file) => {
        try {
          return new Uint8Array(await readFile(file));
        } catch (e) {
          if (e.code === 'ENOENT') return undefined;
          throw e;
        }
      };
      const snapshot = await read(path);
      return snapshot === undefined ? undefined : { snapshot, journal: await read(journalPath) };
    },
    async apply(writes) {
      const { open } = fs();
      let journal;
      try {
        for (const w of writes) {
          if (w.snapshot) {
            await journal?.close();
            journal = undefined;
            await replace(path, w.snapshot);
            await replace(journalPath, w.journal);
          } else if (w.append) {
            journal ??= await open(journalPath, 'a');
            await journal.appendFile(w.append);
          } else if (w.truncate !== undefined) {
            journal ??= await open(journalPath, 'a');
            await journal.truncate(w.truncate);
          }
        }
        await journal?.datasync();
      } finally {
        await journal?.close();
      }
    },
  };
}
