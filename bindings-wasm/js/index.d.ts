/** Loads the WebAssembly module; every async entry point calls it for you. */
export function init(): Promise<void>;

export type Category =
  | 'config' | 'auth' | 'not-found' | 'throttled' | 'timeout' | 'network' | 'server'
  | 'corrupt' | 'wrong-vault' | 'rollback' | 'conflict';

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
export type Signer = (request: OutgoingRequest) => Promise<{ url: string; headers: Headers }>;

/** Where the local state lives between sessions. */
export interface StateStorage {
  load(): Promise<Uint8Array | undefined>;
  save(state: Uint8Array): Promise<unknown>;
}

export interface OpenOptions {
  /** `s3://bucket/prefix?region=…&endpoint=…&path_style=true` */
  store: string;
  key: VaultKey;
  /** A stable device id (32 hex digits); kept in the state when omitted. */
  device?: string;
  /** A state from `exportState()`. */
  state?: Uint8Array;
  /** Loads the state at open and saves it after every sync. */
  storage?: StateStorage;
  /** Omit them in a browser that gets presigned URLs through `signer`. */
  credentials?: Credentials;
  signer?: Signer;
  fetch?: typeof globalThis.fetch;
}

export interface SyncReport {
  pushed: number;
  pulled: number;
  requests: number;
  requestsByKind: Record<'list' | 'get-manifest' | 'get-segment' | 'put-segment' | 'put-manifest', number>;
  bytesSent: number;
  bytesReceived: number;
  retries: number;
  /** Objects that could not be imported; the sync went on past them. */
  errors: BucketsyncError[];
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
  put(key: Bytes, value: Bytes): void;
  get(key: Bytes): Uint8Array | undefined;
  getString(key: Bytes): string | undefined;
  delete(key: Bytes): void;
  keys(prefix?: Bytes): Uint8Array[];
  keyStrings(prefix?: Bytes): string[];
  sync(): Promise<SyncReport>;
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
