/**
 * Loads the WebAssembly module once; every async entry point calls it for you. By default the
 * module is found beside the package's `index.js`. A bundler that does not carry the wasm along
 * (esbuild) needs it given here first: its URL (`import wasmUrl from 'bucketsync/wasm'` with a
 * file loader for `.wasm`), a Response, its bytes or a compiled module.
 */
export function init(
  source?: string | URL | Response | BufferSource | WebAssembly.Module,
): Promise<void>;

export type Category =
  | 'config' | 'auth' | 'not-found' | 'throttled' | 'timeout' | 'network' | 'server'
  | 'corrupt' | 'wrong-vault' | 'rollback' | 'conflict' | 'locked' | 'clock';

/** Any bucketsync error. */
export class BucketsyncError extends Error {
  readonly category: Category;
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
/** The local state is held by another tab, window or process (one writer per device). */
export class LockedError extends BucketsyncError {}
/** A device's clock runs too far ahead: what it wrote since is held until the clocks agree. */
export class ClockError extends BucketsyncError {}

/** Keys and values: bytes, or strings stored as UTF-8. */
export type Bytes = string | Uint8Array | ArrayBuffer;
export type Headers = [name: string, value: string][];

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface OutgoingRequest {
  method: 'GET' | 'PUT' | 'HEAD' | 'DELETE';
  url: string;
  headers: Headers;
  body: Uint8Array;
}

/** Signs or presigns a request elsewhere (an auth service), returning what to send. */
/**
 * Signs or presigns a request (an auth service that holds the credentials). Returns the URL to
 * use and any headers to add: the request's own headers (such as `if-none-match`) are always
 * sent as they are, and a returned header of the same name is ignored.
 */
export type Signer = (request: OutgoingRequest) => Promise<{ url: string; headers: Headers }>;

/** One write to a state storage, applied in order. */
export type StateWrite =
  | { append: Uint8Array }
  | { truncate: number }
  | { snapshot: Uint8Array; journal: Uint8Array };

/**
 * Where the local state lives between sessions: a snapshot and the journal after it. `load`
 * may also give the bytes of a snapshot alone (a state saved by an earlier version).
 */
export interface StateStorage {
  /** Names the state for the Web Lock that keeps one writer per device. */
  readonly name?: string;
  load(): Promise<{ snapshot: Uint8Array; journal?: Uint8Array } | Uint8Array | undefined>;
  /** Applies the writes in order; resolves once they are stored (one transaction). */
  apply(writes: StateWrite[]): Promise<unknown>;
}

export interface OpenOptions {
  /** `s3://bucket/prefix?region=…&endpoint=…&path_style=true` */
  store: string;
  key: VaultKey;
  /**
   * A name for this device ("Anna's laptop", kept as its label; its id is random and kept in
   * the state), or a stable id (32 hex digits). Omitted: the state's device.
   */
  device?: string;
  /**
   * 'join' (default): a new device's first sync rejects with NotFoundError when the store holds
   * no vault for this key. 'create': see `Vault.create`. 'join-or-create': either.
   */
  mode?: 'join' | 'create' | 'join-or-create';
  /** A state from `exportState()`. */
  state?: Uint8Array;
  /**
   * Loads the state at open and writes every change to it (one transaction per batch). The
   * state is held under a Web Lock while the vault is open.
   */
  storage?: StateStorage;
  /** Omit them in a browser that gets presigned URLs through `signer`. */
  credentials?: Credentials;
  signer?: Signer;
  fetch?: typeof globalThis.fetch;
  /** Every request gives up after this many milliseconds (default 30000). */
  timeoutMs?: number;
  /** When another tab holds the state: fail with LockedError (default) or wait for it. */
  lock?: 'error' | 'wait';
}

export interface SyncReport {
  pushed: number;
  pulled: number;
  requests: number;
  requestsByKind: Record<
    | 'list' | 'get-manifest' | 'get-segment' | 'put-segment' | 'put-manifest'
    | 'get-checkpoint' | 'put-checkpoint' | 'list-vaults' | 'delete-checkpoint' | 'delete-segment'
    | 'check-create',
    number
  >;
  bytesSent: number;
  bytesReceived: number;
  retries: number;
  /** Objects that could not be imported; the sync went on past them. */
  errors: BucketsyncError[];
  /** Keys whose value or deletion changed here because of this sync, sorted. */
  changed: Uint8Array[];
  /** Keys where a write concurrent with an unpushed write of this device arrived. */
  conflicts: Uint8Array[];
  /** This sync wrote a checkpoint of the vault (compaction). */
  compacted: boolean;
  /** Tombstones that checkpoint left out (older than the grace period, merged everywhere). */
  collected: number;
  /** This device's segments deleted because a checkpoint covers them. */
  segmentsDeleted: number;
  /**
   * The old device id when this device started over under a new id (out of touch longer than
   * the grace period, or retired by another device), else null.
   */
  startedOver: string | null;
  /** Keys whose unpushed writes were applied again with fresh stamps when it started over. */
  restamped: Uint8Array[];
}

export interface Version {
  /** undefined for a deletion */
  value: Uint8Array | undefined;
  device: string;
  timeMs: number;
}

export interface DeviceInfo {
  id: string;
  label: string;
  /** Its last push (ms since the epoch, by its clock), or null if it never pushed. */
  lastPushMs: number | null;
  segments: number;
  thisDevice: boolean;
  /** Silent for longer than `staleAfterDays`. */
  stale: boolean;
  /** Retired: nobody waits for it, and if it syncs again it starts over. */
  retired: boolean;
}

export class VaultKey {
  private constructor();
  static generate(): Promise<VaultKey>;
  static fromRecoveryCode(code: string): Promise<VaultKey>;
  recoveryCode(): string;
  readonly vaultId: string;
}

export class Vault {
  private constructor();
  static open(options: OpenOptions): Promise<Vault>;
  /** Starts a new vault; its first sync rejects with ConflictError when one exists already. */
  static create(options: Omit<OpenOptions, 'mode'>): Promise<Vault>;
  devices(options?: { staleAfterDays?: number }): DeviceInfo[];
  readonly label: string;
  /** Versions of `key`, newest first: the current one, then earlier ones. */
  history(key: Bytes): Version[];
  /** Lets the next sync push deletions past the mass-deletion guard. */
  confirmDeletions(): void;
  /**
   * Marks device `id` retired (from another device): tombstones stop waiting for it, and if it
   * syncs again it starts over under a new id. Said in this device's manifest at the next sync.
   */
  retire(id: string): void;
  /** Resolves once the write is in the storage. */
  put(key: Bytes, value: Bytes): Promise<void>;
  get(key: Bytes): Uint8Array | undefined;
  getString(key: Bytes): string | undefined;
  /** Resolves once the delete is in the storage. */
  delete(key: Bytes): Promise<void>;
  keys(prefix?: Bytes): Uint8Array[];
  keyStrings(prefix?: Bytes): string[];
  /** Rejects with `signal.reason` when `signal` aborts it; nothing is lost. */
  sync(options?: { signal?: AbortSignal }): Promise<SyncReport>;
  /** Resolves once every change so far is in the storage. */
  flush(): Promise<void>;
  /** Saves, lets go of the state's lock and closes. */
  close(): Promise<void>;
  exportState(): Uint8Array;
  readonly device: string;
  readonly unpushed: number;
}

export function presign(options: {
  method: OutgoingRequest['method'];
  url: string;
  credentials: Credentials;
  region?: string;
  expiresSeconds?: number;
}): Promise<string>;

export function signRequest(options: {
  method: OutgoingRequest['method'];
  url: string;
  headers?: Headers;
  body?: Bytes;
  credentials: Credentials;
  region?: string;
}): Promise<Headers>;

export function indexedDbStorage(name?: string, key?: string): StateStorage;
export function fileStorage(path: string): StateStorage;
