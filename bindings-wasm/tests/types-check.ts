// Compiled with `tsc --strict --noEmit` by scripts/test.sh: the package's types must describe
// the documented usage without casts, and reject misuse (the @ts-expect-error lines).
import {
  BucketsyncError, AuthError, Vault, VaultKey, fileStorage, presign, type SyncReport, type Signer,
  type FileReport, type FileInfo, type FileProgress, VaultFile, type AutoSyncEvent, type ImportReport,
  AccessError, type Category, type Identity, type Role, type SharedVaultInfo, type MemberInfo,
  invitationInfo, remoteSigner, type InvitationInfo, type PutFilesReport, ConfigError, NetworkError,
} from '../js/index.js';

async function usage(): Promise<void> {
  const key: VaultKey = await VaultKey.generate();
  const again: VaultKey = await VaultKey.fromRecoveryCode(key.recoveryCode());
  const signer: Signer = async ({ method, url }) => ({
    url: await presign({ method, url, credentials: { accessKeyId: 'a', secretAccessKey: 'b' } }),
    headers: [],
  });
  const vault = await Vault.open({ store: 's3://bucket/p', key: again, storage: fileStorage('/tmp/x'), signer });
  vault.put('k', 'v');
  vault.put(new Uint8Array([1]), new Uint8Array([2]));
  const value: Uint8Array | undefined = vault.get('k');
  const text: string | undefined = vault.getString('k');
  const keys: string[] = vault.keyStrings('notes/');
  try {
    const report: SyncReport = await vault.sync();
    const lists: number = report.requestsByKind.list;
    const categories: string[] = report.errors.map((e) => e.category);
    const changed: Uint8Array[] = report.changed;
    const conflicts: Uint8Array[] = report.conflicts;
    const checkpoints: number = report.requestsByKind['get-checkpoint'];
    const packs: number = report.requestsByKind['put-pack'] + report.requestsByKind['get-hint'];
    void [lists, categories, changed, conflicts, checkpoints, packs, report.compacted];
  } catch (e) {
    if (e instanceof AuthError) {
      const category: 'auth' | string = e.category;
      void category;
    } else if (e instanceof BucketsyncError) {
      void e.message;
    }
  }
  const offline = new NetworkError('offline', 'network', { cause: new Error('no route') });
  void offline.category;
  // @ts-expect-error an error of the package names its category
  void new ConfigError('no category');
  // @ts-expect-error numbers are not keys
  vault.put(1, 'v');
  const created: Vault = await Vault.create({ store: 's3://bucket/p', key, device: 'laptop' });
  const labels: string[] = created.devices({ staleAfterDays: 7 }).map((d) => d.label);
  const older: (Uint8Array | undefined)[] = created.history('k').map((v) => v.value);
  created.confirmDeletions();
  created.retire(created.devices()[0].id);
  const retired: boolean = created.devices()[0].retired;
  const report = await created.sync();
  const startedOver: string | null = report.startedOver;
  const collected: number = report.collected;
  void [labels, older, created.label, retired, startedOver, collected, report.restamped];
  // @ts-expect-error a mode is one of three words
  await Vault.open({ store: 's3://bucket/p', key, mode: 'sometimes' });
  // @ts-expect-error the store URL is required
  await Vault.open({ key });
  void [value, text, keys];

  // Files: a File or Blob, a stream, bytes or a path in; a Blob, a WritableStream or a path out.
  const controller = new AbortController();
  const seen: FileProgress[] = [];
  const file = new File([new Uint8Array(8)], 'a.bin');
  const stored: FileReport = await vault.putFile('files/a', file, {
    packSize: 1 << 20,
    signal: controller.signal,
    onProgress: (p) => { seen.push(p); const total: number | null = p.bytesTotal; void total; },
  });
  const sent: number = stored.bytesSent + stored.chunksUploaded + stored.chunksReused;
  await vault.putFile('files/b', new Uint8Array([1, 2]));
  await vault.putFile('files/c', new Blob(['x']).stream(), { size: 1 });
  await vault.putFile('files/d', '/tmp/d.bin');
  const blob: Blob | null = await vault.getFile('files/a', { type: 'image/png', signal: controller.signal });
  const streamed: boolean = await vault.getFile('files/a', new WritableStream<Uint8Array>(), { onProgress: () => {} });
  const saved: boolean = await vault.getFile('files/a', '/tmp/a.bin');
  const info: FileInfo | null = vault.fileInfo('files/a');
  const inline: boolean | undefined = info?.inline;
  const hash: string | undefined = info?.contentHash;
  const opened: VaultFile | null = vault.openFile('files/a');
  if (opened) {
    const part: VaultFile = opened.slice(-100, -10, 'text/plain');
    const size: number = part.size;
    const bytes: Uint8Array = await part.bytes({ signal: controller.signal });
    const text: string = await opened.text();
    const stream: ReadableStream<Uint8Array> = opened.stream();
    void [size, bytes, text, stream];
  }
  // @ts-expect-error a VaultFile comes from openFile
  new VaultFile();
  // @ts-expect-error a number is no file source
  await vault.putFile('files/e', 42);
  // @ts-expect-error the Blob comes back only without a target
  const notBlob: Blob = await vault.getFile('files/a', '/tmp/a.bin');
  // @ts-expect-error packSize is a number of bytes
  await vault.putFile('files/e', file, { packSize: '1 MiB' });
  void [sent, blob, streamed, saved, inline, hash, notBlob, seen];
  // Many files in one upload: reports keyed by the keys as given.
  const batch: PutFilesReport<string> = await vault.putFiles([
    { key: 'files/f', data: file },
    { key: 'files/g', data: new Blob(['x']).stream(), size: 1 },
    { key: 'files/h', data: '/tmp/h.bin' },
  ], { packSize: 1 << 20, signal: controller.signal, onProgress: (key: string, p: FileProgress) => { void [key, p]; } });
  const one: FileReport | undefined = batch.stored.get('files/f');
  const why: BucketsyncError | undefined = batch.failed.get('files/g');
  const packs: number = batch.packs + batch.requests + batch.bytesSent + batch.chunksUploaded + batch.chunksReused;
  const binary: PutFilesReport = await vault.putFiles([{ key: new Uint8Array([1]), data: new Uint8Array(4) }]);
  const name: string = 'files/' + String(packs);
  const found: boolean = batch.stored.has(name);
  // @ts-expect-error each file is { key, data }
  await vault.putFiles([['files/f', file]]);
  // @ts-expect-error a number is no file source
  await vault.putFiles([{ key: 'files/f', data: 42 }]);
  void [one, why, packs, binary, found];

  // Background sync, its events, export and import.
  const running: Promise<boolean> = vault.startAutoSync({
    interval: 30,
    debounce: 1,
    onEvent: (e: AutoSyncEvent) => {
      if (e.kind === 'changed') {
        const changedKeys: Uint8Array[] = e.keys;
        void changedKeys;
      } else if (e.kind === 'state') {
        const state: 'idle' | 'syncing' | 'offline' | 'error' = e.state;
        const category: string | null = e.category;
        void [state, category];
      } else if (e.kind === 'progress') {
        const done: number = e.progress.requestsDone;
        void done;
      }
    },
  });
  vault.notify('network-lost');
  // @ts-expect-error notify takes one of five words
  vault.notify('offline');
  // @ts-expect-error intervals are seconds, as numbers
  vault.startAutoSync({ interval: '30s' });
  for await (const event of vault.events()) {
    if (event.kind === 'conflict') break;
  }
  const syncing: boolean = vault.autoSyncing;
  await vault.stopAutoSync();
  const hint: boolean = (await vault.sync()).hintUnchanged;
  const jsonl: string = vault.exportRecords({ history: true });
  const imported: ImportReport = await vault.importRecords(jsonl);
  await vault.importRecords(new TextEncoder().encode(jsonl));
  const counts: number = imported.lines + imported.imported + imported.deleted + imported.unchanged
    + imported.older + imported.history;
  void [running, syncing, hint, counts];

  // Sharing: the vault is the home; shared vaults are opened through it.
  const me: Identity = vault.identity();
  const fingerprint: string = me.fingerprint;
  const emma: Vault = await vault.createShared('s3://bucket/family', 'emma', { storage: fileStorage('/tmp/emma') });
  const invitation: string = await emma.share(me.public, { role: 'write' });
  await emma.share(me.public);
  const through: string = await emma.share(me.public, { role: 'read', signerUrl: 'https://signer.example/sign' });
  const told: InvitationInfo = await invitationInfo(through);
  const signerUrl: string | null = told.signer;
  const vaultId: string = emma.vaultId;
  const vaultOf: string = told.vaultId;
  if (told.signer) await vault.accept(through, { signer: remoteSigner(told.signer, 'member-token'), grantedBy: fingerprint });
  void vaultOf;
  void [signerUrl, vaultId];
  const accepted: Vault = await vault.accept(invitation, { credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });
  const reopened: Vault = await vault.openShared('emma', { lock: 'wait' });
  const list: SharedVaultInfo[] = vault.shared();
  const role: Role = list[0].role;
  const from: string | null = list[0].grantedBy;
  const since: number = list[0].since;
  try {
    await accepted.share(me.public);
  } catch (e) {
    if (e instanceof AccessError) {
      const category: Category = e.category;
      const access: Category = 'access';
      void [category, access];
    }
  }
  // @ts-expect-error a role is one of three words
  await emma.share(me.public, { role: 'admin' });
  // @ts-expect-error the store and key come from the home's record
  await vault.openShared('emma', { store: 's3://bucket/other' });
  void [fingerprint, reopened, role, from, since];

  // Members and revocation, on the shared vault.
  const members: MemberInfo[] = emma.members();
  const standing: Role | 'revoked' = members[0].role;
  const memberSince: number = members[0].since;
  const by: string = members[0].grantedBy;
  const writes: boolean = members[0].mayWrite;
  const pins: [string, number][] = members[0].pins;
  const gone: MemberInfo = emma.revoke(members[1].fingerprint);
  const wasRole: string = gone.role;
  const wasPublic: string = gone.public;
  // @ts-expect-error a member's role is one of four words, 'revoked' not a Role
  const onlyRole: Role = members[0].role;
  // @ts-expect-error revoke returns the member at once, not a promise
  await emma.revoke(members[1].fingerprint).then(() => {});
  void [standing, memberSince, by, writes, pins, wasRole, wasPublic, onlyRole];
}
void usage;
