/**
 * Loads the WebAssembly module once; every async entry point calls it for you. By default the
 * module is found beside the package's `index.js`. A bundler that does not carry the wasm along
 * (esbuild) needs it given here first: its URL (`import wasmUrl from 'bucketsync/wasm'` with a
 * file loader for `.wasm`), a Response, its bytes or a compiled module.
 */
export function init(
  source?: string | URL | Response | BufferSource | WebAssembly.Module,
): Promise<void>;

/**
 * The kind of a bucketsync error, as its `category` names it. Each has its class: `'config'` a
 * `ConfigError`, `'not-found'` a `NotFoundError`, `'wrong-vault'` a `WrongVaultError`, and so on.
 */
export type Category =
  | 'config' | 'auth' | 'not-found' | 'throttled' | 'timeout' | 'network' | 'server'
  | 'corrupt' | 'wrong-vault' | 'rollback' | 'conflict' | 'locked' | 'clock' | 'access';

/** Any bucketsync error. */
export class BucketsyncError extends Error {
  /**
   * Made by the package with the category of its class (`new AuthError(message, 'auth')`); a
   * host transport that throws one passes both too.
   */
  constructor(message: string, category: Category, options?: ErrorOptions);
  /** What kind of error it is: the same for every error of a class (`'auth'` for `AuthError`). */
  readonly category: Category;
}
/**
 * Bad input or configuration: a store URL, a recovery code, an option or argument; a call on a
 * closed vault; a store that answers 400 or redirects (a wrong region or endpoint in the store
 * URL). The message says what is wrong.
 */
export class ConfigError extends BucketsyncError {}
/**
 * The store refused the credentials or the signature (HTTP 401 or 403, an expired session
 * token).
 */
export class AuthError extends BucketsyncError {}
/**
 * A bucket or object that should exist does not (HTTP 404), or a first sync in the mode
 * `'join'` found no vault for this key in the store.
 */
export class NotFoundError extends BucketsyncError {}
/** The store asked to slow down (HTTP 429 or 503, `SlowDown`). */
export class ThrottledError extends BucketsyncError {}
/** A request did not finish within `timeoutMs`, or the store answered that it timed out (408). */
export class TimeoutError extends BucketsyncError {}
/**
 * The store could not be reached: a request failed before any answer (the fetch or the
 * `signer` threw).
 */
export class NetworkError extends BucketsyncError {}
/**
 * The store answered with an error that no other class covers (a 500, say), or with something
 * that cannot be read.
 */
export class ServerError extends BucketsyncError {}
/**
 * An object, or the local state, failed its checks or does not decode: damaged, truncated or
 * misplaced.
 */
export class CorruptError extends BucketsyncError {}
/** An object, or the local state, belongs to another vault: it was made with another key. */
export class WrongVaultError extends BucketsyncError {}
/**
 * The store serves a device's manifest older than one already trusted, or one that names fewer
 * segments than are known to exist (an old manifest, or a lost one).
 */
export class RollbackError extends BucketsyncError {}
/**
 * The operation collides with another: a sync or background sync that runs already, `create`
 * for a vault that exists, a push past the mass-deletion guard (see `confirmDeletions`), a
 * store that answers 409 or 412.
 */
export class ConflictError extends BucketsyncError {}
/** The local state is held by another tab, window or process (one writer per device). */
export class LockedError extends BucketsyncError {}
/** A device's clock runs too far ahead: what it wrote since is held until the clocks agree. */
export class ClockError extends BucketsyncError {}
/**
 * Not allowed: `share` or `revoke` on a vault not opened through its home or not owned by it,
 * `accept` of an invitation sealed to another identity, a write to a shared vault where the
 * role is read, a sync of a shared vault whose owner revoked this person.
 */
export class AccessError extends BucketsyncError {}

/** Keys and values: bytes, or strings stored as UTF-8. */
export type Bytes = string | Uint8Array | ArrayBuffer;
/** HTTP headers as `[name, value]` pairs, in order. */
export type Headers = [name: string, value: string][];

/**
 * An S3 access key pair, with a session token for temporary credentials. Kept in memory only:
 * never part of the saved state.
 */
export interface Credentials {
  /** The access key id; empty is a ConfigError. */
  accessKeyId: string;
  /** The secret access key; empty is a ConfigError. */
  secretAccessKey: string;
  /** The session token that comes with temporary credentials; empty counts as none. */
  sessionToken?: string;
}

/** A request as a `Signer` gets it, before it is sent. */
export interface OutgoingRequest {
  /** POST and DELETE come from file transfers (multipart uploads of big packs). */
  method: 'GET' | 'PUT' | 'HEAD' | 'DELETE' | 'POST';
  /** The URL it is for: the store's endpoint, the object's path and any query. */
  url: string;
  /** The headers it carries already (such as `if-none-match`); they are sent as they are. */
  headers: Headers;
  /** Its body; only a PUT's or a POST's is sent. */
  body: Uint8Array;
}

/**
 * Signs or presigns a request (an auth service that holds the credentials). Returns the URL to
 * use and any headers to add: the request's own headers (such as `if-none-match`) are always
 * sent as they are, and a returned header of the same name is ignored.
 */
export type Signer = (request: OutgoingRequest) => Promise<{
  /** The URL to send the request to: a presigned URL, or the request's own. */
  url: string;
  /** Headers to add to the request's own. */
  headers: Headers;
}>;

/** One write to a state storage, applied in order. */
export type StateWrite =
  | {
    /** Bytes to add at the end of the journal. */
    append: Uint8Array;
  }
  | {
    /** The length in bytes to cut the journal to (dropping a torn last entry). */
    truncate: number;
  }
  | {
    /** The new snapshot, in place of the old one. */
    snapshot: Uint8Array;
    /** The first bytes of a new journal, in place of the whole old one. */
    journal: Uint8Array;
  };

/**
 * Where the local state lives between sessions: a snapshot and the journal after it. `load`
 * may also give the bytes of a snapshot alone (a state saved by an earlier version).
 */
export interface StateStorage {
  /** Names the state for the Web Lock that keeps one writer per device. */
  readonly name?: string;
  /**
   * Reads the saved state: the snapshot and the journal after it, the bytes of a snapshot
   * alone, or `undefined` when nothing is saved yet (a new device). Called once as a vault
   * opens, unless `state` is given.
   */
  load(): Promise<{
    /** The last snapshot written. */
    snapshot: Uint8Array;
    /** The journal written after it; missing counts as empty, and a torn end is dropped. */
    journal?: Uint8Array;
  } | Uint8Array | undefined>;
  /** Applies the writes in order; resolves once they are stored (one transaction). */
  apply(writes: StateWrite[]): Promise<unknown>;
  /**
   * Locks the state for one Vault and resolves to the function that lets go (fileStorage: a
   * lock file, across processes and within this one). Rejects with LockedError naming the
   * holder, or waits for it with `wait`. Without it, a Web Lock on `name` is used where the
   * platform has Web Locks.
   */
  lock?(wait: boolean): Promise<() => void>;
}

/** What `Vault.open` takes (and `Vault.create`, but `mode`). */
export interface OpenOptions {
  /** `s3://bucket/prefix?region=…&endpoint=…&path_style=true` */
  store: string;
  /** The vault's key, the same on every device (anything else rejects with TypeError). */
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
   * state is locked while the vault is open: by the storage's own lock (fileStorage's lock
   * file), else under a Web Lock.
   */
  storage?: StateStorage;
  /** Omit them in a browser that gets presigned URLs through `signer`. */
  credentials?: Credentials;
  /** Called for each request before it is sent, to sign or presign it (see `Signer`). */
  signer?: Signer;
  /** The `fetch` that sends every request (default `globalThis.fetch`). */
  fetch?: typeof globalThis.fetch;
  /** Every request gives up after this many milliseconds (default 30000). */
  timeoutMs?: number;
  /** When another tab, Vault or process holds the state: fail with LockedError (default) or wait. */
  lock?: 'error' | 'wait';
  /**
   * Tombstones older than this (plus twice `maxClockSkewDays`) that every active device has
   * merged are dropped from checkpoints, and a device out of touch longer than this starts over
   * when it returns; use the same value on every device of a vault. Default 30.
   */
  graceDays?: number;
  /**
   * How far a device's clock may be off the true time, in days (so two clocks up to twice
   * this apart; further is reported with category `clock`). Default 1.
   */
  maxClockSkewDays?: number;
  /**
   * What another device stamped further ahead of this clock is held (reported with category
   * `clock`) until the clocks agree, in days. Default 7.
   */
  maxFutureDays?: number;
}

/** What a person may do in a shared vault. */
export type Role = 'read' | 'write' | 'owner';

/** A person's identity, the same on every device of their home (`home.identity()`). */
export interface Identity {
  /** The public identity (`bsid1…`): what someone who shares a vault with them needs. */
  public: string;
  /** Its short form (`21ZV-CDAN-2NX4-6JE3`), to compare aloud before sharing. */
  fingerprint: string;
}

/** A vault a home made or accepted (`home.shared()`). */
export interface SharedVaultInfo {
  /** The home's name for it (unique in the home). */
  label: string;
  /** Its store URL. */
  store: string;
  /** What this person may do in it. */
  role: Role;
  /** The fingerprint of who granted it; null for a vault this person made. */
  grantedBy: string | null;
  /** When it was made or accepted (ms since the epoch). */
  since: number;
}

/** A person of a shared vault (`vault.members()`), as the statements read so far say. */
export interface MemberInfo {
  /** Their identity's short form (`21ZV-CDAN-2NX4-6JE3`). */
  fingerprint: string;
  /** Their public identity (`bsid1…`). */
  public: string;
  /** What they may do, or `'revoked'`: no longer a member. */
  role: Role | 'revoked';
  /** Since when (ms since the epoch, on the clock of the owner who said so). */
  since: number;
  /** The fingerprint of the owner who said so (the founder's own, for the founder). */
  grantedBy: string;
  /** Their writes count (role `write` or `owner`). */
  mayWrite: boolean;
  /**
   * A revoked member's devices, each with how many of its segments still count (what had been
   * merged when they were revoked): `[device id (32 hex digits), segments]`. Empty for a member.
   */
  pins: [device: string, segments: number][];
}

/**
 * How a home opens one of its shared vaults: `Vault.open`'s options but `store`, `key` and
 * `mode` (they come from the home's record). `fetch` and `timeoutMs` default to the home's.
 * The home's `credentials` and `signer` serve only a store on the home's own service (the same
 * endpoint and region): a store another service holds (an invitation may name any endpoint)
 * gets only the `credentials` or `signer` passed here, else its requests go unsigned and its
 * syncs, file transfers and the accept reject with AuthError saying which credentials to
 * pass. A `signer` given replaces the home's credentials, and `credentials` given the home's
 * signer. `storage` is never the home's (a vault needs a storage of its own: with none, its
 * state lives in memory).
 */
export type SharedOpenOptions = Omit<OpenOptions, 'store' | 'key' | 'mode'>;

/**
 * What a request was for, as a sync report counts it: the vault's records (`list`, manifests,
 * segments, checkpoints), files (`put-pack`, `get-chunks`, and the packs and redirects a
 * device collects and repacks), the change hint a poll reads, and the key grants of a shared
 * vault.
 */
export type RequestKind =
  | 'list' | 'get-manifest' | 'get-segment' | 'put-segment' | 'put-manifest'
  | 'get-checkpoint' | 'put-checkpoint' | 'list-vaults' | 'list-checkpoints' | 'delete-checkpoint'
  | 'delete-segment' | 'list-segments'
  | 'check-create' | 'put-pack' | 'get-chunks' | 'list-packs' | 'delete-pack' | 'list-redirects'
  | 'get-redirect' | 'put-redirect' | 'get-hint' | 'put-hint' | 'put-grant' | 'get-grant';

/** What one `vault.sync()` did. */
export interface SyncReport {
  /** Records of this device written to the store, in new segments. */
  pushed: number;
  /** Records received from other devices' segments and checkpoints. */
  pulled: number;
  /** Requests sent, retries included. */
  requests: number;
  /** Requests sent, by kind (retries included); a kind never sent counts 0. */
  requestsByKind: Record<RequestKind, number>;
  /** Bytes of request bodies sent. */
  bytesSent: number;
  /** Bytes of response bodies received. */
  bytesReceived: number;
  /**
   * Requests sent again after a failure that may pass (5xx, throttling, timeouts, a clock
   * correction).
   */
  retries: number;
  /**
   * The sync was a background poll that found the vault's change hint unmoved (one
   * conditional GET answered 304) and fetched nothing else. Always false for `sync()`.
   * `changed` may still name keys that an earlier sync that failed changed.
   */
  hintUnchanged: boolean;
  /**
   * Objects that could not be imported; the sync went on past them. In a shared vault, an
   * AccessError here says what was ignored and why: it was not signed by a member who may
   * write (unsigned, a forgery, a `read` member's, a revoked member's after the revocation).
   */
  errors: BucketsyncError[];
  /** Keys whose value or deletion changed here because of this sync (or of an earlier one that failed or was cancelled), sorted. */
  changed: Uint8Array[];
  /** Keys where a write concurrent with an unpushed write of this device arrived. */
  conflicts: Uint8Array[];
  /** This sync wrote a checkpoint of the vault (compaction). */
  compacted: boolean;
  /** Tombstones that checkpoint left out (older than the grace period, merged everywhere). */
  collected: number;
  /** This device's segments deleted because a checkpoint covers them. */
  segmentsDeleted: number;
  /** This device's packs deleted because no file references them any more. */
  packsDeleted: number;
  /** This device's mostly-garbage packs whose live chunks were moved into a new pack. */
  packsRepacked: number;
  /**
   * The old device id when this device started over under a new id (out of touch longer than
   * the grace period, or retired by another device), else null.
   */
  startedOver: string | null;
  /** Keys whose unpushed writes were applied again with fresh stamps when it started over. */
  restamped: Uint8Array[];
}

/** What the app tells the background sync with `vault.notify`. */
export type Happening = 'network-lost' | 'network-back' | 'background' | 'foreground' | 'changed';

/** What the background sync is doing: waiting, syncing, offline, or failed (see `category`). */
export type AutoSyncState = 'idle' | 'syncing' | 'offline' | 'error';

/** How far a background sync's running sync has come. */
export interface SyncProgress {
  /** Requests answered (or failed) so far. */
  requestsDone: number;
  /** Requests handed out so far; grows as the sync learns what it needs. */
  requestsTotal: number;
  /** Bytes of request bodies sent so far. */
  bytesSent: number;
  /** Bytes of response bodies received so far. */
  bytesReceived: number;
}

/**
 * What the background sync tells. Every event has every field; what does not apply is `[]`
 * or `null`.
 * - `changed`: `keys` changed here because of a sync (another device wrote or deleted them):
 *   what to show anew. The app's own writes are not announced.
 * - `conflict`: `keys` met a concurrent write of another device; both versions are in the
 *   key's `history`.
 * - `state`: the loop is now `state` (sent when it changes); `category` is the error's when
 *   `state` is `'error'`. A poll that finds nothing sends no event at all.
 * - `progress`: how far a sync has come (not sent for a poll that ends at the change hint).
 */
export type AutoSyncEvent =
  | {
    /** Keys changed here (`'changed'`), or met a concurrent write (`'conflict'`). */
    kind: 'changed' | 'conflict';
    /** Those keys, sorted, each once. */
    keys: Uint8Array[];
    /** Always null for this kind. */
    state: null;
    /** Always null for this kind. */
    category: null;
    /** Always null for this kind. */
    progress: null;
  }
  | {
    /** The background sync's state changed. */
    kind: 'state';
    /** Always empty for this kind. */
    keys: [];
    /** The state it is now in. */
    state: AutoSyncState;
    /** The failed sync's category when `state` is `'error'`, else null. */
    category: Category | null;
    /** Always null for this kind. */
    progress: null;
  }
  | {
    /** A running sync came further. */
    kind: 'progress';
    /** Always empty for this kind. */
    keys: [];
    /** Always null for this kind. */
    state: null;
    /** Always null for this kind. */
    category: null;
    /** How far it has come. */
    progress: SyncProgress;
  };

/** The options of `vault.startAutoSync`; times in seconds. */
export interface AutoSyncOptions {
  /**
   * Between syncs while nothing happens (default 30). Each is a poll: one conditional GET of
   * the vault's change hint while no device published, a full sync when one did.
   */
  interval?: number;
  /** Called with every event, synchronously from the loop; what it throws goes to `reportError`. */
  onEvent?: (event: AutoSyncEvent) => void;
  /**
   * A local write is pushed this long after the last of a burst of writes (default 1), and no
   * later than 10 s after the first.
   */
  debounce?: number;
  /** The longest time between two full syncs, whatever the change hint says (default 600). */
  fullSyncInterval?: number;
  /** The interval while the page is hidden or `notify('background')` holds (default 300). */
  backgroundInterval?: number;
}

/** What one `importRecords` did, line by line (blank lines not counted). */
export interface ImportReport {
  /** Lines read. */
  lines: number;
  /** Keys set to the line's value. */
  imported: number;
  /** Keys deleted by a line that is a deletion. */
  deleted: number;
  /** Lines that needed no change (the key holds that value, or is absent for a deletion). */
  unchanged: number;
  /** Lines left out because the vault, or a later line, holds a version at least as new. */
  older: number;
  /** Earlier versions (`"history": true`), never written. */
  history: number;
}

/** One version of a key, as `vault.history(key)` lists them. */
export interface Version {
  /** undefined for a deletion */
  value: Uint8Array | undefined;
  /** The id of the device that wrote it (32 hex digits). */
  device: string;
  /**
   * When it was written, in ms since the epoch: the writing device's clock, or a later time it
   * had seen from another device.
   */
  timeMs: number;
}

/** One device of the vault, as `vault.devices()` lists them. */
export interface DeviceInfo {
  /** Its device id (32 hex digits). */
  id: string;
  /** Its label (`''` when it has none). */
  label: string;
  /** Its last push (ms since the epoch, by its clock), or null if it never pushed. */
  lastPushMs: number | null;
  /** How many segments it has written to the store, as far as this replica knows. */
  segments: number;
  /** It is this replica's own device. */
  thisDevice: boolean;
  /** Silent for longer than `staleAfterDays`. */
  stale: boolean;
  /** Retired: nobody waits for it, and if it syncs again it starts over. */
  retired: boolean;
}

/** How far a file transfer has come: what `onProgress` gets. */
export interface FileProgress {
  /** File bytes read from the source (`putFile`) or handed to the target (`getFile`) so far. */
  bytesDone: number;
  /**
   * The file's length; `null` when not known (a `ReadableStream` given to `putFile` without
   * `size`).
   */
  bytesTotal: number | null;
  /** Requests answered so far. */
  requestsDone: number;
  /** Requests sent so far (it grows as the transfer goes: not known ahead). */
  requestsTotal: number;
}

/** What `putFile` and `getFile` take besides the file. */
export interface TransferOptions {
  /**
   * Called as bytes are read or written and requests answered, synchronously from the
   * transfer: keep it cheap (throttle DOM updates). If it throws, the transfer stops and
   * rejects with what it threw.
   */
  onProgress?: (progress: FileProgress) => void;
  /**
   * Stops the transfer: it rejects with `signal.reason` (an `AbortError` `DOMException` unless
   * you gave one), its requests are aborted, a source stream is cancelled and a target stream
   * aborted. A stopped `putFile` leaves the key as it was.
   */
  signal?: AbortSignal;
}

export interface PutFileOptions extends TransferOptions {
  /**
   * Packs are closed at about this many bytes (default 16 MiB; the core keeps it within
   * 1 MiB to 1 GiB). 32 MiB or more sends each pack as a multipart upload (in a browser the
   * bucket's CORS rule must then allow POST and DELETE).
   */
  packSize?: number;
  /**
   * The length of a `ReadableStream` source, when you know it (a `Content-Length`): progress
   * then has `bytesTotal`. Blobs, bytes and paths know their length.
   */
  size?: number;
}

export interface GetFileOptions extends TransferOptions {
  /** The MIME type of the returned `Blob` (say `'image/jpeg'`, for an `<img>` object URL). */
  type?: string;
}

/**
 * What a file is read from: a `Blob` or `File` (an `<input type=file>`'s, a drop's), a
 * `ReadableStream` of `Uint8Array` (a `fetch` body, `CompressionStream` output), bytes, or in
 * Node a path (a string or a `file:` URL; in a browser a string is refused, it is never taken
 * as text).
 */
export type FileSource = Blob | ReadableStream<Uint8Array> | Uint8Array | ArrayBuffer | string | URL;

/** What one `putFile` did. */
export interface FileReport {
  /** The file's length in bytes. */
  size: number;
  /** Its chunks (0 for a file of at most 4 KiB, which lives inside its record). */
  chunks: number;
  /** Chunks sealed and sent. */
  chunksUploaded: number;
  /** Chunks the vault (or this file) already held: not sent again. */
  chunksReused: number;
  /** Packs written. */
  packs: number;
  /** Request body bytes sent (retries included). */
  bytesSent: number;
  /** Requests made (retries included). */
  requests: number;
}

/** One file of a `putFiles`: stored under `key` from `data` (what `putFile` takes). */
export interface FileToPut<K extends Bytes = Bytes> {
  /** The key to store the file under. */
  key: K;
  /** What to read the file from. */
  data: FileSource;
  /** The length of a `ReadableStream` `data`, when you know it (as `putFile`'s `size`). */
  size?: number;
}

/** What `putFiles` takes besides the files. */
export interface PutFilesOptions<K extends Bytes = Bytes> {
  /**
   * Called with the key (as given) of the file being read and how far it is, synchronously
   * from the transfer: keep it cheap. If it throws, the batch stops and rejects with what it
   * threw (files stored before stay stored).
   */
  onProgress?: (key: K, progress: FileProgress) => void;
  /**
   * Stops the batch: it rejects with `signal.reason`, its requests are aborted and the source
   * being read is cancelled. Files stored before stay stored.
   */
  signal?: AbortSignal;
  /** Packs are closed at about this many bytes (default 16 MiB), as for `putFile`. */
  packSize?: number;
}

/** What one `putFiles` did: each file stored or left out, and what the whole batch cost. */
export interface PutFilesReport<K extends Bytes = Bytes> {
  /**
   * The files stored, keyed by each key as given (a string key looks up as the string; a
   * `Uint8Array` key as that same object): their `size` and chunks. `packs`, `requests` and
   * `bytesSent` there are the batch's, below.
   */
  stored: Map<K, FileReport>;
  /**
   * The files left out, keyed as `stored`, with the error that kept each out: a
   * `ConfigError` for a source that failed (its error as the `cause`: an `ENOENT` for a path
   * gone by its turn) or that gave another length than it declared. Their keys hold what they
   * held before. A key given twice stores the file given later; if that one fails, the
   * earlier one may be stored already (the key is then in both maps).
   */
  failed: Map<K, BucketsyncError>;
  /** Chunks sealed and sent. */
  chunksUploaded: number;
  /** Chunks the vault (or the batch) already held: not sent again. */
  chunksReused: number;
  /** Packs written: the batch's files share them. */
  packs: number;
  /** Request body bytes sent (retries included). */
  bytesSent: number;
  /** Requests made (retries included). */
  requests: number;
}

/** What `fileInfo` tells about a file without fetching it. */
export interface FileInfo {
  /** Its length in bytes. */
  size: number;
  /** How many chunks it is stored in (0: it lives inside its record). */
  chunks: number;
  /** How many packs hold them. */
  packs: number;
  /**
   * Hex of the keyed content hash: equal for equal content within a vault and key generation
   * (a revocation starts a new one).
   */
  contentHash: string;
  /** It lives inside its record (`chunks === 0`): reading it sends no request. */
  inline: boolean;
}

/** Options of a read of a `VaultFile`. */
export interface ReadOptions {
  /** Stops the read: it rejects with `signal.reason`. */
  signal?: AbortSignal;
}

/**
 * A file opened with `vault.openFile(key)`, or a slice of one: Blob-like, but its bytes are
 * fetched only when read. Reads of one opened file (and its slices) run one at a time. A
 * read rejects with `CorruptError` when a chunk fails its check, `NotFoundError` when its
 * pack is gone, or the request's error.
 */
export class VaultFile {
  private constructor();
  /** Its length in bytes. */
  readonly size: number;
  /** The content type given to `slice` (`''` for an opened file). */
  readonly type: string;
  /** The bytes `start` (default 0) to `end` (default `size`), as `Blob.slice` takes them: negative counts from the end. Fetches nothing. */
  slice(start?: number, end?: number, contentType?: string): VaultFile;
  /** All of its bytes. */
  bytes(options?: ReadOptions): Promise<Uint8Array>;
  /** All of its bytes, as an `ArrayBuffer`. */
  arrayBuffer(options?: ReadOptions): Promise<ArrayBuffer>;
  /** Its bytes decoded as UTF-8. */
  text(options?: ReadOptions): Promise<string>;
  /** Its bytes, fetched 1 MiB at a time as the stream is read. */
  stream(options?: ReadOptions): ReadableStream<Uint8Array>;
}

/** The secret every device of a vault shares: the vault's keys and id are derived from it. */
export class VaultKey {
  private constructor();
  /** A new random key. Rejects with ConfigError when the platform has no source of randomness. */
  static generate(): Promise<VaultKey>;
  /**
   * Reads a recovery code back (case, spaces and dashes do not matter; `I` and `L` read as `1`,
   * `O` as `0`). Rejects with ConfigError for a wrong length, a character outside the alphabet
   * or a checksum that does not match (a typo).
   */
  static fromRecoveryCode(code: string): Promise<VaultKey>;
  /**
   * The key as a code to write down: 56 Crockford base32 digits in groups of four joined by
   * `-`, the last few a checksum. Whoever has it has the key.
   */
  recoveryCode(): string;
  /** The id of the vault this key opens (32 hex digits): its folder in the store. */
  readonly vaultId: string;
}

/**
 * One device's replica of a vault: read and written locally, synced with the store by `sync`
 * or `startAutoSync`. A vault opened with `Vault.open` or `Vault.create` is also its person's
 * home for sharing (`identity`, `createShared`, `openShared`, `accept`); one opened through a
 * home is a shared vault (`share`, `members`, `revoke`).
 */
export class Vault {
  private constructor();
  /**
   * Opens this device's replica of the vault in `store` (see `OpenOptions`). Nothing is sent
   * to the store before the first sync. Rejects with TypeError when `key` is not a
   * `VaultKey` or `lock` is neither value; ConfigError for a bad store URL, device, `mode` or
   * number of days, or a state that belongs to another device; WrongVaultError or CorruptError
   * for a state made with another key or damaged; LockedError when another tab, Vault or
   * process holds the state (unless `lock: 'wait'`).
   */
  static open(options: OpenOptions): Promise<Vault>;
  /** Starts a new vault; its first sync rejects with ConflictError when one exists already. */
  static create(options: Omit<OpenOptions, 'mode'>): Promise<Vault>;
  /**
   * The vault's devices known here, this one included, sorted by id. A device is stale when
   * silent for longer than `staleAfterDays` (default 30). Throws ConfigError for a
   * `staleAfterDays` that is not a finite number >= 0, or a closed vault.
   */
  devices(options?: { staleAfterDays?: number }): DeviceInfo[];
  /** This device's label (`''` when it has none), as named by the `device` option. */
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
  /** The value of `key` as bytes; undefined when the key is absent or deleted. */
  get(key: Bytes): Uint8Array | undefined;
  /** The value of `key` decoded as UTF-8; undefined when the key is absent or deleted. */
  getString(key: Bytes): string | undefined;
  /** Resolves once the delete is in the storage. */
  delete(key: Bytes): Promise<void>;
  /** The live keys (deleted ones left out) that start with `prefix`, sorted, as bytes. */
  keys(prefix?: Bytes): Uint8Array[];
  /** The live keys that start with `prefix`, sorted as bytes, decoded as UTF-8. */
  keyStrings(prefix?: Bytes): string[];
  /** Rejects with `signal.reason` when `signal` aborts it; nothing is lost. */
  sync(options?: { signal?: AbortSignal }): Promise<SyncReport>;
  /**
   * Stores `source` as the file `key`: cut into chunks by content, sealed, sent in packs
   * (chunks the vault already holds are not sent again), then its record is written; the
   * next `sync` pushes the record. Streams: memory stays bounded whatever the file's size.
   * Resolves once the record is in the storage.
   *
   * Rejects with `ConfigError` when the source fails (its error is the `cause`) or the vault
   * is closed; a request's error as its class (`NetworkError`, `AuthError`, ...); with
   * `signal.reason` when `signal` aborts it, or what `onProgress` threw. A failed or stopped
   * `putFile` leaves the key as it was. A source stream is read to its end (and cancelled if
   * the transfer fails); do not change a `Uint8Array` while it is being stored.
   *
   * @example
   * const report = await vault.putFile('photos/cat.jpg', input.files[0], {
   *   onProgress: ({ bytesDone, bytesTotal }) => { bar.value = bytesDone / bytesTotal; },
   *   signal: controller.signal,
   * });
   */
  putFile(key: Bytes, source: FileSource, options?: PutFileOptions): Promise<FileReport>;
  /**
   * Stores many files in one upload: small files share packs, so a folder of them costs a
   * few requests rather than one or more per file. Each file's record is written once every
   * pack holding its bytes is stored; the next `sync` pushes the records. Resolves once the
   * records are in the storage.
   *
   * Every `data` is checked before anything is sent (its type; a path is looked up): a wrong
   * one throws `TypeError`, a missing path rejects with `ConfigError`, and nothing is stored.
   * Each source is opened only when its turn comes. A source that fails then (a path gone by
   * its turn, a stream that errors) or gives another length than it declared is left out (in
   * `failed`, its key as it was) and the rest go on. Rejects with a request's error as its
   * class when one stops the upload, with `signal.reason` when `signal` aborts it, or with
   * what `onProgress` threw; files stored before stay stored.
   *
   * @example
   * const report = await vault.putFiles(
   *   [...input.files].map((file) => ({ key: `photos/${file.name}`, data: file })));
   * for (const [key, error] of report.failed) console.warn(key, error.message);
   */
  putFiles(files: Iterable<FileToPut<string>>, options?: PutFilesOptions<string>): Promise<PutFilesReport<string>>;
  putFiles(files: Iterable<FileToPut>, options?: PutFilesOptions): Promise<PutFilesReport>;
  /**
   * Reads the file `key` into a `Blob` (the whole file; for large files pass a target);
   * resolves to `null` when the key is absent or deleted. Every chunk is checked before it is
   * handed on, and the whole file at the end.
   *
   * Rejects with `ConfigError` when the key holds a record that is not a file, `CorruptError`
   * when the bytes fail their checks, `NotFoundError` when a pack is missing, a request's
   * error as its class, or `signal.reason` / what `onProgress` threw.
   */
  getFile(key: Bytes, options?: GetFileOptions): Promise<Blob | null>;
  /**
   * Reads the file `key` into `target`, so that a large file never sits whole in memory:
   * - a `WritableStream` (say `await handle.createWritable()` from the File System Access
   *   API): written chunk by chunk as they are checked, closed at the end; aborted when the
   *   read fails (what it got is then a prefix of the file); left open (and unlocked) when
   *   the key holds nothing.
   * - in Node, a path: written to a partial file beside it (`.<name>.<16 hex digits>.part`,
   *   one per version of the file), synced and renamed into place once the whole file is read
   *   and checked; a failed or stopped read leaves nothing at the path (one stopped while the
   *   whole file was being renamed into place resolves to `true`: it is there). A read stopped
   *   by an abort, a network failure or a timeout keeps its partial file, and the next read of
   *   the same file to the same path checks what it holds and fetches only the rest (as in
   *   Python, Swift, Kotlin and Rust); once a read puts the file in place, the partial files
   *   of its other versions go. Two reads to one path at once in one process each get a
   *   partial file of their own; Node has no file lock, so two processes must not.
   *
   * Resolves to `true`, or `false` when the key is absent or deleted (nothing written).
   * Errors as for `getFile(key)`; a target that fails gives `ConfigError` with its error as
   * `cause`.
   */
  getFile(key: Bytes, target: WritableStream<Uint8Array> | string | URL, options?: TransferOptions): Promise<boolean>;
  /**
   * What the file under `key` is, without fetching it; `null` when the key is absent or
   * deleted. Throws `ConfigError` when the key holds a record that is not a file.
   */
  fileInfo(key: Bytes): FileInfo | null;
  /**
   * Opens the file `key` for reading at any offset: the version stored now, whatever a sync
   * brings in later. Reads fetch only the chunks they overlap (at least 4 MiB, kept for the
   * next read), each checked against its id; the whole-file hash is checked only by whole
   * reads (`getFile`). `null` when the key is absent or deleted; throws `ConfigError` when it
   * holds a record that is not a file.
   */
  openFile(key: Bytes): VaultFile | null;
  /**
   * Syncs in the background until `stopAutoSync()` or `close()`: every `interval` seconds (a
   * poll that costs one conditional GET while nothing changed; a full sync at least every
   * `fullSyncInterval`), `debounce` seconds after local writes, again after a backoff (2 s
   * doubling to 5 min) when a sync fails in a way that may pass (network, timeout, throttled,
   * server), and not again after an `auth`, `config`, `wrong-vault` or `not-found` error until
   * `notify('changed')`, the network coming back or the page coming back to the foreground.
   * Never two syncs at once: `sync()` still works meanwhile (it rejects with ConflictError
   * only if it meets the background sync mid-sync). Every change it pulls is saved to the
   * storage before it waits again.
   *
   * The loop is the core's, run on this page's (or worker's, or Node's) event loop. In a page
   * or worker it listens to `online` / `offline` (and starts offline when `navigator.onLine`
   * is false) and, in a page, to `visibilitychange` (hidden: `backgroundInterval`), and stops
   * listening when it ends.
   *
   * **Tabs.** Where Web Locks exist, the loop runs under the lock
   * `bucketsync:auto-sync:<vault id>:<storage name>` (without a storage:
   * `…:<device id>`): one loop per vault and local state across tabs and workers. A second
   * tab's loop on the same state waits for the lock and starts when the first stops, or its
   * tab closes; meanwhile `autoSyncing` is true and the returned promise pending. (A storage
   * is held by one tab anyway: see `lock` in `Vault.open`; tabs that are devices of their own
   * each run their own loop.)
   *
   * Throws ConfigError for an option that is not a number of seconds > 0 or a closed vault,
   * TypeError when `onEvent` is not a function, ConflictError when a background sync runs (or
   * waits) already on this vault. Resolves to `true` once the loop runs, `false` when it was
   * stopped before it could; never rejects.
   *
   * @example
   * vault.startAutoSync({ interval: 30, onEvent: (e) => {
   *   if (e.kind === 'changed') refresh(e.keys);
   *   if (e.kind === 'state') status.textContent = e.category ? `${e.state}: ${e.category}` : e.state;
   * } });
   */
  startAutoSync(options?: AutoSyncOptions): Promise<boolean>;
  /**
   * Stops the background sync: a sync it was running is abandoned at once (safely: the next
   * sync resumes it) and its requests aborted; no event is delivered after this call and no
   * request sent. A loop still waiting for its lock never starts. Resolves once it has ended
   * and what it pulled is saved. Does nothing when none runs.
   */
  stopAutoSync(): Promise<void>;
  /** A background sync runs (or waits for its Web Lock). */
  readonly autoSyncing: boolean;
  /**
   * Tells the background sync what it cannot see: the network lost or back, the app in the
   * background or the foreground (a page's own online/offline and visibility are already
   * wired), or `'changed'` (new credentials: try again at once, even after an auth error).
   * Ignored when none runs. Throws ConfigError for any other value.
   */
  notify(what: Happening): void;
  /**
   * The background sync's events as an async iterable: `for await (const event of
   * vault.events())`. Each iteration hears every event from when it starts (whether or not a
   * background sync runs yet: `startAutoSync` starts it); leaving the loop (`break`,
   * `return`, a throw) stops it listening; it ends when the vault closes. Events that arrive
   * while the loop body awaits are queued.
   */
  events(): AsyncIterable<AutoSyncEvent>;
  /**
   * Every record as JSON Lines, one line a key in key order (deleted keys as deletions):
   * `{"key","value","deleted","time","counter","device"}`, with `key_base64` / `value_base64`
   * for bytes that are not UTF-8 text. `history`: each key's earlier versions kept here
   * follow it, marked `"history": true`. Files (`putFile`) are left out. Reads local state
   * only. Throws ConfigError when the vault is closed.
   */
  exportRecords(options?: { history?: boolean }): string;
  /**
   * Merges JSON Lines (as `exportRecords` writes them; another tool's lines need only `key`
   * and `value`) into the vault: per key, the newest line is written as a local put or delete
   * unless the vault holds a version at least as new, or that value already, so importing
   * twice changes nothing. Earlier versions are never written. The next sync pushes what
   * changed. Resolves once the writes are in the storage. Rejects with ConfigError naming the
   * line (counted from 1) and what is wrong when a line is malformed, and then nothing is
   * imported; TypeError when `input` is not a string or bytes.
   */
  importRecords(input: string | Uint8Array | ArrayBuffer): Promise<ImportReport>;
  /** Resolves once every change so far is in the storage. */
  flush(): Promise<void>;
  /**
   * The identity of the person whose home this vault is (the same on every device of the
   * home). Throws ConfigError when the vault is closed.
   */
  identity(): Identity;
  /**
   * The vaults this home made or accepted. One made or accepted on another device of the home
   * shows once this device has synced the home.
   */
  shared(): SharedVaultInfo[];
  /**
   * Makes a new vault to share, in `store`, kept in this home as `label` with the role owner,
   * and opens it: its first sync creates it (ConflictError when it exists already). Sync the
   * home as well, so that its other devices know the vault. Throws ConfigError for a bad
   * label or store, or a label the home has already. What it takes of the home's connection:
   * see {@link SharedOpenOptions}.
   *
   * @example
   * const emma = await home.createShared('s3://bucket/family', 'emma', { storage: fileStorage('emma.state') });
   * await emma.put('school', 'Mon 8:00');
   * await emma.sync();
   * await home.sync();
   */
  createShared(store: string, label: string, options?: SharedOpenOptions): Promise<Vault>;
  /**
   * Opens this device's replica of the vault the home keeps as `label`, with the home's role
   * in it (a `read` role refuses writes with AccessError). Rejects with ConfigError when the
   * home has no vault by that label.
   */
  openShared(label: string, options?: SharedOpenOptions): Promise<Vault>;
  /**
   * Grants this shared vault (opened with the home's `createShared`, `openShared` or `accept`)
   * to the person whose public identity is `publicIdentity`, with `role` (default `'read'`):
   * one PUT in the vault's folder. Resolves to the invitation (`bsinv1…`) to send them.
   * `signerUrl`: the `/sign` URL of a `bucketsync signer` through which they reach the store
   * (https, or http on this machine only; give them a member token for it too); the invitation
   * names it, and the recipient passes `remoteSigner(url, token)` to `accept`. It is not
   * signed: their token goes there, so send the invitation over a channel you trust.
   * Rejects with AccessError when this vault was not opened through its home or the home does
   * not own it, ConfigError for a bad identity, role or signer URL (one that carries
   * credentials included; nothing is sent then), or the request's error.
   *
   * @example
   * const invitation = await emma.share(bobPublic, { role: 'write' });
   */
  share(publicIdentity: string, options?: { role?: Role; signerUrl?: string }): Promise<string>;
  /**
   * The people of this shared vault, as the statements this replica has read say (sync to
   * learn of changes made elsewhere): the founder, everyone granted it, and who was revoked.
   * Empty for a vault that is not shared (one not opened through its home, or a home).
   */
  members(): MemberInfo[];
  /**
   * Revokes the member whose fingerprint is `fingerprint` (as typed: case, dashes and spaces do
   * not matter). Sends nothing: the next `sync` publishes it. From then on every reader counts
   * what their devices wrote up to what this replica had merged of it (`pins`), nothing after,
   * and their own syncs reject with AccessError. Returns the member as they were.
   *
   * The revocation starts a new key generation: the next `sync` seals it to every member left
   * and re-seals the records under it; files stored after it are sealed under it too. They
   * keep what they read, the older keys and the files stored before: revoke their bucket
   * credentials or signer token too.
   *
   * Throws AccessError when this person is not an owner of the vault (or it is not shared),
   * ConfigError when no member has that fingerprint or it is the founder's or one's own.
   *
   * @example
   * const bob = emma.revoke('21ZV-CDAN-2NX4-6JE3');
   * await emma.sync();
   */
  revoke(fingerprint: string): MemberInfo;
  /**
   * Accepts an invitation with this home's identity: reads its grant (one GET in the
   * invitation's store, reached as {@link SharedOpenOptions} says), keeps the
   * vault in this home (a label the home uses already gets a number: `emma (2)`) and opens
   * it. `grantedBy`: the granter's fingerprint as they told it out of band (the invitation
   * alone says who sent it); an invitation from anyone else rejects with AccessError before
   * any request. Rejects with AccessError when the invitation is sealed to another identity
   * (or when called on a shared vault: only a home accepts), NotFoundError when its grant is
   * gone, ConfigError for a text that is not an invitation, CorruptError when the grant fails
   * its checks.
   */
  accept(invitation: string, options?: SharedOpenOptions & { grantedBy?: string }): Promise<Vault>;
  /** Stops the background sync, saves, lets go of the state's lock and closes. */
  close(): Promise<void>;
  /**
   * A whole snapshot of the local state as bytes, for `Vault.open({ state })` (with the same
   * key) or a backup; the storage gets it as its new snapshot too. Throws ConfigError when the
   * vault is closed.
   */
  exportState(): Uint8Array;
  /** This replica's device id (32 hex digits); a new one after it starts over (`startedOver`). */
  readonly device: string;
  /** How many keys hold a local write (a put or a delete) not yet pushed to the store. */
  readonly unpushed: number;
  /** The vault's id (32 hex digits): its folder in the store; a signer's member tokens name it. */
  readonly vaultId: string;
}

/**
 * What an invitation says (`invitationInfo`), read without any request. None of it is verified
 * yet: pass `accept` the granter's fingerprint as they told it to you (`grantedBy`), not this
 * one, before a token goes to `signer`.
 */
export interface InvitationInfo {
  /** The shared vault's store URL (checked against the grant's signature by `accept`). */
  store: string;
  /** The shared vault's id (32 hex digits). */
  vaultId: string;
  /** The fingerprint of who the invitation says granted it: compare it with what they told you. */
  grantedBy: string;
  /**
   * The `/sign` URL of the signer to reach the store through, if the granter named one. Not
   * signed: a forged invitation can name any signer.
   */
  signer: string | null;
}

/** Reads an invitation without any request. Rejects with ConfigError for other text. */
export function invitationInfo(invitation: string): Promise<InvitationInfo>;

/**
 * Presigns one request: resolves to its URL with a SigV4 signature in the query, which anyone
 * holding it can send with that method, without credentials, until it expires (what an auth
 * service hands out, for a `Signer`). `region` defaults to `'us-east-1'`, `expiresSeconds` to
 * 900. Rejects with ConfigError for empty credentials, a URL that cannot be signed, or an
 * `expiresSeconds` over 7 days.
 */
export function presign(options: {
  method: OutgoingRequest['method'];
  url: string;
  credentials: Credentials;
  region?: string;
  expiresSeconds?: number;
}): Promise<string>;

/**
 * A `signer` that asks a presigning service (`bucketsync signer`) at `url` (its `/sign`), with
 * `token` as the bearer token. A request the service refuses rejects with an Error carrying
 * its reason.
 */
export function remoteSigner(url: string, token: string): Signer;

/**
 * Signs a request the app sends itself (say, setting the bucket's CORS rule) with SigV4:
 * resolves to the headers to send it with, those given followed by the signature's
 * (`authorization`, `x-amz-date`, ...). The body's hash is signed: send that exact body.
 * `region` defaults to `'us-east-1'`. Rejects with ConfigError for empty credentials or a
 * request that cannot be signed.
 */
export function signRequest(options: {
  method: OutgoingRequest['method'];
  url: string;
  headers?: Headers;
  body?: Bytes;
  credentials: Credentials;
  region?: string;
}): Promise<Headers>;

/**
 * The state in IndexedDB (browsers): in the database `name` (default `'bucketsync'`), the
 * snapshot under `key` (default `'state'`) and the journal beside it, so one database can hold
 * several states. Each batch of writes is one transaction with `durability: 'strict'`. A vault
 * holds it under the Web Lock `bucketsync:<name>/<key>` (where Web Locks exist). Loading asks
 * the browser to keep the site's storage (`navigator.storage.persist()`).
 */
export function indexedDbStorage(name?: string, key?: string): StateStorage;
/**
 * The state in files (Node): the snapshot at `path`, the journal at `path + '.journal'`, and
 * while a Vault holds them the lock file `path + '.lock'`. A second open of the same path, in
 * this process or another of this host, rejects with LockedError naming the holder (or waits,
 * with `lock: 'wait'`); a lock left by a process that no longer runs is taken over. Each batch
 * of writes is fsynced before its put resolves; a snapshot goes to a temporary file that is
 * fsynced and renamed into place, and the folder is fsynced.
 */
export function fileStorage(path: string): StateStorage;
