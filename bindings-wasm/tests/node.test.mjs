import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir, homedir } from 'node:os';
import { join } from 'node:path';

import * as bucketsync from '../js/index.js';
import { Vault, VaultKey } from '../js/index.js';
import { startServer, root } from './helpers.mjs';

let server;
before(async () => {
  server = await startServer('node-sync', 'node-errors', 'node-signer', 'node-interop', 'node-files');
});
after(async () => {
  await server?.stop();
});

test('two vaults converge through SeaweedFS, and a third bootstraps', async () => {
  const key = await VaultKey.generate();
  const store = server.store('node-sync', 'notes/');
  const a = await Vault.create({ store, key, device: 'a', credentials: server.credentials });
  const b = await Vault.open({ store, key, credentials: server.credentials });
  a.put('notes/a', 'from a');
  a.put(new Uint8Array([0, 255]), new Uint8Array([1, 2, 3]));
  b.put('notes/b', 'from b');
  b.put('shared', 'b');
  // A later millisecond: writes in the same one on two unsynced devices are concurrent, and
  // the device id decides.
  await new Promise((resolve) => setTimeout(resolve, 5));
  a.put('shared', 'a, later');
  b.delete('notes/b');
  for (const vault of [a, b, a]) {
    const report = await vault.sync();
    assert.deepEqual(report.errors, []);
  }
  assert.deepEqual(a.keyStrings(), b.keyStrings());
  assert.equal(b.getString('shared'), 'a, later');
  assert.deepEqual(b.get(new Uint8Array([0, 255])), new Uint8Array([1, 2, 3]));
  assert.equal(a.get('notes/b'), undefined);

  const c = await Vault.open({ store, key, credentials: server.credentials });
  const report = await c.sync();
  assert.ok(report.pulled >= 3);
  assert.equal(report.requestsByKind.list, 1);
  assert.deepEqual(c.keyStrings('notes/'), ['notes/a']);
  assert.equal((await c.sync()).requests, 1, 'nothing new: one LIST');
  assert.equal(report.changed.length, 4, 'three live keys and one deletion');
  const labels = c.devices().map((d) => d.label).sort();
  assert.deepEqual(labels, ['', 'a', ''].sort());
});

test('join needs the vault, create needs it absent, and a mass deletion needs confirming', async () => {
  const key = await VaultKey.generate();
  const store = server.store('node-sync', 'lifecycle/');
  const lost = await Vault.open({ store, key, credentials: server.credentials });
  await lost.put('k', 'v');
  await assert.rejects(lost.sync(), (e) => e instanceof bucketsync.NotFoundError && /no vault for this key/.test(e.message));
  assert.equal(lost.unpushed, 1);
  const owner = await Vault.create({ store, key, device: 'owner', credentials: server.credentials });
  for (let i = 0; i < 20; i++) await owner.put(`n${i}`, 'v');
  await owner.sync();
  const twice = await Vault.create({ store, key, credentials: server.credentials });
  await assert.rejects(twice.sync(), (e) => e instanceof bucketsync.ConflictError && /already exists/.test(e.message));
  await lost.sync();
  assert.equal(lost.getString('n3'), 'v');
  for (let i = 0; i < 15; i++) await owner.delete(`n${i}`);
  await assert.rejects(owner.sync(), (e) => e instanceof bucketsync.ConflictError && /mass-deletion guard/.test(e.message));
  owner.confirmDeletions();
  assert.equal((await owner.sync()).pushed, 15);
  const report = await lost.sync();
  assert.equal(report.changed.length, 15);
  assert.equal(lost.keyStrings('n').length, 5);
  assert.equal(owner.label, 'owner');
  assert.ok(lost.devices().some((d) => d.label === 'owner' && d.lastPushMs > 0 && !d.stale));
  await assert.rejects(Vault.open({ store, key, mode: 'maybe' }), (e) => e instanceof bucketsync.ConfigError);

  // Both edit one key before syncing: the later edit wins, the other stays in history on both.
  await lost.put('shared', 'from lost');
  await new Promise((resolve) => setTimeout(resolve, 5));
  await owner.put('shared', 'from owner');
  await owner.sync();
  const clash = await lost.sync();
  assert.deepEqual(clash.conflicts.map((k) => new TextDecoder().decode(k)), ['shared']);
  await owner.sync();
  for (const vault of [owner, lost]) {
    const versions = vault.history('shared').map((v) => new TextDecoder().decode(v.value));
    assert.deepEqual(versions, ['from owner', 'from lost']);
  }

  // The owner retires the other device; that device starts over under a new id when it syncs
  // again, and its unpushed write goes out.
  const lostId = lost.devices().find((d) => d.thisDevice).id;
  assert.throws(() => owner.retire('not an id'), bucketsync.ConfigError);
  owner.retire(lostId);
  assert.equal((await owner.sync()).startedOver, null);
  await lost.put('after', 'retired');
  const back = await lost.sync();
  assert.equal(back.startedOver, lostId);
  assert.deepEqual(back.restamped.map((k) => new TextDecoder().decode(k)), ['after']);
  await owner.sync();
  assert.equal(owner.getString('after'), 'retired');
  assert.ok(owner.devices().some((d) => d.id === lostId && d.retired));
});

test('errors are Error subclasses with a category', async () => {
  const key = await VaultKey.generate();
  const code = key.recoveryCode();
  const typo = (code[0] === '1' ? '2' : '1') + code.slice(1);
  await assert.rejects(VaultKey.fromRecoveryCode(typo), (e) => {
    assert.ok(e instanceof bucketsync.ConfigError && e instanceof bucketsync.BucketsyncError && e instanceof Error);
    assert.equal(e.category, 'config');
    assert.match(e.message, /checksum/);
    return true;
  });
  await assert.rejects(
    Vault.open({ store: 's3://bucket/x?endpoit=http://x', key, credentials: server.credentials }),
    (e) => e instanceof bucketsync.ConfigError && /unknown parameter/.test(e.message),
  );
  const secret = 'not-the-secret-at-all-42';
  const wrong = await Vault.open({
    store: server.store('node-errors'),
    key,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: secret },
  });
  wrong.put('k', 'v');
  await assert.rejects(wrong.sync(), (e) => {
    assert.ok(e instanceof bucketsync.AuthError, `${e}`);
    assert.equal(e.category, 'auth');
    assert.ok(!e.message.includes(secret));
    return true;
  });
  assert.equal(wrong.unpushed, 1, 'nothing lost');
  const missing = await Vault.open({ store: server.store('no-such-bucket-here'), key, credentials: server.credentials });
  await assert.rejects(missing.sync(), (e) => e instanceof bucketsync.NotFoundError && e.category === 'not-found');

  const mine = await Vault.open({ store: server.store('node-errors'), key, credentials: server.credentials });
  await assert.rejects(
    Vault.open({ store: server.store('node-errors'), key: await VaultKey.generate(), state: mine.exportState() }),
    (e) => e instanceof bucketsync.WrongVaultError,
  );
  assert.throws(() => mine.put('k', 42), TypeError);
});

test('a page without keys syncs through a signer that presigns (an auth service)', async () => {
  const key = await VaultKey.generate();
  const store = server.store('node-signer');
  // The "auth service": holds the credentials, hands out presigned URLs.
  const signer = async ({ method, url }) => ({
    url: await bucketsync.presign({ method, url, credentials: server.credentials, expiresSeconds: 60 }),
    headers: [],
  });
  const browserLike = await Vault.create({ store, key, signer });
  browserLike.put('via', 'presigned URLs');
  const report = await browserLike.sync();
  assert.equal(report.pushed, 1);
  const reader = await Vault.open({ store, key, credentials: server.credentials });
  await reader.sync();
  assert.equal(reader.getString('via'), 'presigned URLs');
});

test('a signer adds to the engine\'s headers, never removes them: a presigned create is still conditional', async () => {
  const key = await VaultKey.generate();
  const store = server.store('node-signer', 'conditional/');
  const signer = async ({ method, url }) => ({
    url: await bucketsync.presign({ method, url, credentials: server.credentials, expiresSeconds: 60 }),
    headers: [['x-from-signer', 'yes']],
  });
  const sent = [];
  const recordingFetch = (url, init) => {
    sent.push({ url, method: init.method, headers: new Headers(init.headers), body: init.body });
    return globalThis.fetch(url, init);
  };
  const vault = await Vault.create({ store, key, signer, fetch: recordingFetch });
  vault.put('k', 'v');
  assert.equal((await vault.sync()).pushed, 1);
  const put = sent.find((r) => r.method === 'PUT' && new URL(r.url).pathname.includes('/s/'));
  assert.ok(put, 'a segment PUT went out');
  assert.equal(put.headers.get('if-none-match'), '*');
  assert.equal(put.headers.get('x-from-signer'), 'yes');
  // The same presigned create again: the object exists, so the store refuses it.
  const again = await globalThis.fetch(put.url, { method: 'PUT', headers: put.headers, body: put.body });
  assert.equal(again.status, 412);
});

test('fileStorage keeps the state across opens', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bucketsync-node-'));
  const storage = bucketsync.fileStorage(join(dir, 'replica.state'));
  const key = await VaultKey.generate();
  const store = server.store('node-sync', 'file-state/');
  const first = await Vault.create({ store, key, storage, credentials: server.credentials });
  await first.put('kept', 'yes');
  await first.sync();
  await first.put('unsynced', 'in the journal');
  const device = first.device;
  await first.close();
  assert.throws(() => first.put('k', 'v'), (e) => e instanceof bucketsync.ConfigError);
  const again = await Vault.open({ store, key, storage, credentials: server.credentials });
  assert.equal(again.getString('kept'), 'yes');
  assert.equal(again.getString('unsynced'), 'in the journal');
  assert.equal(again.unpushed, 1);
  assert.equal(again.device, device);
});

test('a Node process killed right after an awaited put loses nothing', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bucketsync-node-kill-'));
  const key = await VaultKey.generate();
  const store = server.store('node-sync', 'kill/');
  const script = `
import * as bucketsync from ${JSON.stringify(join(root, 'bindings-wasm/js/index.js'))};
const [store, code, path, id, secret] = process.argv.slice(1);
const key = await bucketsync.VaultKey.fromRecoveryCode(code);
const vault = await bucketsync.Vault.create({ store, key, storage: bucketsync.fileStorage(path),
  credentials: { accessKeyId: id, secretAccessKey: secret } });
for (let i = 0; i < 20; i++) await vault.put('acked/' + i, 'v' + i);
process.stdout.write('acknowledged' + String.fromCharCode(10));
process.kill(process.pid, 'SIGKILL');
`;
  const state = join(dir, 'killed.state');
  let out = '';
  try {
    out = execFileSync(process.execPath, ['--input-type=module', '-e', script, store, key.recoveryCode(), state,
      server.accessKeyId, server.secretAccessKey], { encoding: 'utf8' });
  } catch (e) {
    assert.equal(e.signal, 'SIGKILL');
    out = e.stdout;
  }
  assert.equal(out.trim(), 'acknowledged');
  // The child was creating the vault; its restart goes on creating it.
  const restarted = await Vault.create({ store, key, storage: bucketsync.fileStorage(state), credentials: server.credentials });
  assert.equal(restarted.keyStrings('acked/').length, 20);
  assert.equal((await restarted.sync()).pushed, 20);
});

test('an aborted sync rejects with the signal\'s reason, and the next one finishes', async () => {
  const key = await VaultKey.generate();
  const store = server.store('node-sync', 'abort/');
  const controller = new AbortController();
  const abortOnSegmentPut = async (url, init) => {
    const response = await fetch(url, init);
    if (init.method === 'PUT' && url.includes('/s/')) controller.abort(new Error('the user left the page'));
    return response;
  };
  const vault = await Vault.create({ store, key, credentials: server.credentials, fetch: abortOnSegmentPut });
  for (let i = 0; i < 5; i++) await vault.put(`k${i}`, 'v');
  await assert.rejects(vault.sync({ signal: controller.signal }), /the user left the page/);
  const report = await vault.sync();
  assert.equal(vault.unpushed, 0, JSON.stringify(report));
  const reader = await Vault.open({ store, key, credentials: server.credentials });
  assert.equal((await reader.sync()).pulled, 5);
});

test('a request that never answers times out', async () => {
  const key = await VaultKey.generate();
  const never = (url, init) => new Promise((_, reject) => {
    init.signal.addEventListener('abort', () => reject(init.signal.reason));
  });
  const vault = await Vault.open({ store: server.store('node-sync', 'never/'), key, credentials: server.credentials,
    fetch: never, timeoutMs: 100 });
  const started = Date.now();
  await assert.rejects(vault.sync(), (e) => e instanceof bucketsync.TimeoutError && e.category === 'timeout');
  // Five attempts with real backoff between them (≈ 0.1+0.2+0.4+0.8 s at least half of each).
  assert.ok(Date.now() - started >= 5 * 100 + 750, `waited ${Date.now() - started} ms`);
});

test('interop: what Node writes Python reads, and back', async () => {
  const python = process.env.BUCKETSYNC_PYTHON ?? join(homedir(), '.cache/bucketsync/pyvenv/bin/python');
  const key = await VaultKey.generate();
  const store = server.store('node-interop');
  const node = await Vault.create({ store, key, credentials: server.credentials });
  node.put('from/node', 'hello from JavaScript');
  await node.sync();
  const script = `
import sys, bucketsync
key = bucketsync.VaultKey.from_recovery_code(sys.argv[2])
creds = bucketsync.Credentials(sys.argv[3], sys.argv[4])
with bucketsync.Vault.open(sys.argv[1], key, credentials=creds) as v:
    v.sync()
    print(v.get("from/node").decode())
    v.put("from/python", "hello from Python")
    v.sync()
`;
  const out = execFileSync(python, ['-c', script, store, key.recoveryCode(), server.accessKeyId, server.secretAccessKey], {
    encoding: 'utf8',
    cwd: root,
  });
  assert.equal(out.trim(), 'hello from JavaScript');
  await node.sync();
  assert.equal(node.getString('from/python'), 'hello from Python');
});

// Files. Packs of 1 MiB (the least the core takes) so that a few MiB span several chunks (512 KiB
// to 8 MiB, 1 MiB on average) and several packs.
const MiB = 1 << 20;
const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');
const blobBytes = async (blob) => new Uint8Array(await blob.arrayBuffer());

/** Progress events: bytesDone never goes back, and ends at `size` (of `total`). */
function checkProgress(events, size, total = size) {
  assert.ok(events.length >= 3, `${events.length} progress events`);
  for (let i = 1; i < events.length; i++) {
    assert.ok(events[i].bytesDone >= events[i - 1].bytesDone, `bytesDone went back at event ${i}`);
    assert.ok(events[i].requestsDone >= events[i - 1].requestsDone);
    assert.ok(events[i].requestsDone <= events[i].requestsTotal);
  }
  assert.equal(events.at(-1).bytesDone, size);
  for (const e of events) assert.equal(e.bytesTotal, total);
  assert.ok(new Set(events.map((e) => e.bytesDone)).size >= 3, 'bytesDone grew in steps');
}

async function fileVaults(prefix) {
  const key = await VaultKey.generate();
  const store = server.store('node-files', prefix);
  const writer = await Vault.create({ store, key, credentials: server.credentials });
  const reader = await Vault.open({ store, key, credentials: server.credentials });
  return { key, store, writer, reader };
}

test('files: a path goes up in chunks and packs, and another device reads it to a path', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bucketsync-files-'));
  const data = randomBytes(6 * MiB + 12345);
  writeFileSync(join(dir, 'in.bin'), data);
  const { writer, reader } = await fileVaults('paths/');

  const up = [];
  const report = await writer.putFile('files/in.bin', join(dir, 'in.bin'), {
    packSize: MiB,
    onProgress: (p) => up.push(p),
  });
  checkProgress(up, data.length);
  assert.equal(report.size, data.length);
  assert.ok(report.chunks >= 3, `${report.chunks} chunks`);
  assert.equal(report.chunksUploaded, report.chunks);
  assert.equal(report.chunksReused, 0);
  assert.ok(report.packs >= 3, `${report.packs} packs`);
  assert.ok(report.bytesSent > data.length && report.bytesSent < data.length + 64 * 1024);
  assert.equal(up.at(-1).requestsDone, report.requests);
  const info = writer.fileInfo('files/in.bin');
  assert.deepEqual({ ...info, contentHash: undefined }, {
    size: data.length, chunks: report.chunks, packs: report.packs, contentHash: undefined, inline: false,
  });
  assert.match(info.contentHash, /^[0-9a-f]{64}$/);
  assert.equal(writer.unpushed, 1, 'the record waits for the next sync');
  await writer.sync();

  await reader.sync();
  assert.deepEqual(reader.fileInfo('files/in.bin'), info);
  const down = [];
  assert.equal(await reader.getFile('files/in.bin', join(dir, 'out.bin'), { onProgress: (p) => down.push(p) }), true);
  checkProgress(down, data.length);
  assert.equal(down[0].bytesDone, 0);
  assert.equal(sha256(readFileSync(join(dir, 'out.bin'))), sha256(data));
  assert.deepEqual(readdirSync(dir).sort(), ['in.bin', 'out.bin'], 'no partial file left');
  // A file URL is a path too, and an existing file is replaced whole.
  writeFileSync(join(dir, 'again.bin'), 'old contents');
  assert.equal(await reader.getFile('files/in.bin', new URL(`file://${join(dir, 'again.bin')}`)), true);
  assert.equal(sha256(readFileSync(join(dir, 'again.bin'))), sha256(data));

  // The same bytes again under another key: every chunk is referenced, nothing is sent.
  const twice = await writer.putFile('files/copy.bin', data, { packSize: MiB });
  assert.deepEqual([twice.chunksUploaded, twice.chunksReused, twice.packs, twice.bytesSent],
    [0, report.chunks, 0, 0]);
  assert.equal(writer.fileInfo('files/copy.bin').contentHash, info.contentHash);
});

test('files: bytes, a Blob and streams in; a Blob and a WritableStream out; small files live in their record', async () => {
  const { writer, reader } = await fileVaults('kinds/');
  const small = new TextEncoder().encode('a small file, inline in its record');
  const smallReport = await writer.putFile('small', small);
  assert.deepEqual([smallReport.size, smallReport.chunks, smallReport.packs, smallReport.requests], [small.length, 0, 0, 0]);
  assert.deepEqual(writer.fileInfo('small'), { ...writer.fileInfo('small'), size: small.length, chunks: 0, packs: 0, inline: true });
  await writer.putFile('empty', new Uint8Array(0));
  assert.equal(writer.fileInfo('empty').size, 0);

  const big = randomBytes(3 * MiB + 7);
  await writer.putFile('blob', new Blob([big.subarray(0, MiB), big.subarray(MiB)]), { packSize: MiB });
  // A stream of odd-sized chunks, its length not given: progress has no total.
  const events = [];
  let at = 0;
  const stream = new ReadableStream({
    pull(controller) {
      if (at >= big.length) return controller.close();
      const n = Math.min(100_003, big.length - at);
      controller.enqueue(new Uint8Array(big.subarray(at, at + n)));
      at += n;
    },
  });
  const streamed = await writer.putFile('stream', stream, { packSize: MiB, onProgress: (p) => events.push(p) });
  checkProgress(events, big.length, null);
  assert.equal(streamed.chunksUploaded, 0, 'the same bytes as the blob');
  assert.equal(writer.fileInfo('stream').contentHash, writer.fileInfo('blob').contentHash);
  // Given its size, a stream's progress has a total.
  const sized = [];
  await writer.putFile('sized', new Blob([big]).stream(), { size: big.length, onProgress: (p) => sized.push(p) });
  assert.equal(sized.at(-1).bytesTotal, big.length);
  await writer.sync();
  await reader.sync();

  const smallBlob = await reader.getFile('small', { type: 'text/plain' });
  assert.ok(smallBlob instanceof Blob);
  assert.equal(smallBlob.type, 'text/plain');
  assert.equal(await smallBlob.text(), 'a small file, inline in its record');
  assert.equal((await reader.getFile('empty')).size, 0);
  assert.equal(sha256(await blobBytes(await reader.getFile('blob'))), sha256(big));

  const chunks = [];
  let closed = false;
  const sink = new WritableStream({
    write(chunk) { chunks.push(chunk); },
    close() { closed = true; },
  });
  assert.equal(await reader.getFile('stream', sink), true);
  assert.ok(closed, 'the stream is closed at the end');
  assert.ok(chunks.length >= 2 && chunks.every((c) => c instanceof Uint8Array));
  assert.equal(sha256(Buffer.concat(chunks)), sha256(big));

  // Absent: null, false, and nothing written anywhere.
  const dir = mkdtempSync(join(tmpdir(), 'bucketsync-absent-'));
  assert.equal(await reader.getFile('nothing'), null);
  assert.equal(await reader.getFile('nothing', join(dir, 'x')), false);
  assert.deepEqual(readdirSync(dir), []);
  const untouched = new WritableStream();
  assert.equal(await reader.getFile('nothing', untouched), false);
  assert.equal(untouched.locked, false, 'left open and unlocked');
  assert.equal(reader.fileInfo('nothing'), null);
  await writer.delete('small');
  assert.equal(writer.fileInfo('small'), null);
  assert.equal(await writer.getFile('small'), null);
});

test('files: wrong arguments are TypeErrors, a record that is not a file a ConfigError', async () => {
  const { writer } = await fileVaults('misuse/');
  await assert.rejects(writer.putFile('k', 42), TypeError);
  await assert.rejects(writer.putFile('k', new Uint8Array(1), { packSize: 0 }), TypeError);
  await assert.rejects(writer.putFile('k', new Uint8Array(1), { size: -1 }), TypeError);
  await assert.rejects(writer.getFile('k', 42), TypeError);
  await assert.rejects(writer.getFile('k', new (class Target {})()), TypeError);
  await assert.rejects(writer.putFile('k', '/no/such/file/here'), (e) =>
    e instanceof bucketsync.ConfigError && e.cause?.code === 'ENOENT');
  await writer.put('plain', 'a value, not a file');
  assert.throws(() => writer.fileInfo('plain'), bucketsync.ConfigError);
  await assert.rejects(writer.getFile('plain'), bucketsync.ConfigError);
  const stream = new ReadableStream({ start(c) { c.enqueue('text, not bytes'); c.close(); } });
  await assert.rejects(writer.putFile('k', stream), (e) =>
    e instanceof bucketsync.ConfigError && /not a Uint8Array/.test(e.message));
  assert.equal(writer.fileInfo('k'), null);
});

test('files: openFile is a Blob-like reader that fetches only the ranges read', async () => {
  const { key, store, writer } = await fileVaults('open/');
  const data = randomBytes(9 * MiB + 321);
  await writer.putFile('big', data, { packSize: 2 * MiB });
  await writer.putFile('small', new TextEncoder().encode('héllo, small file'));
  await writer.put('plain', 'a value, not a file');
  await writer.sync();
  // A reader whose requests, and the bytes of their answers, are counted.
  const requests = [];
  let received = 0;
  const counting = async (input, init) => {
    requests.push(init?.method ?? 'GET');
    const response = await fetch(input, init);
    received += (await response.clone().arrayBuffer()).byteLength;
    return response;
  };
  const reader = await Vault.open({ store, key, credentials: server.credentials, fetch: counting });
  await reader.sync();
  requests.length = 0;
  received = 0;

  const file = reader.openFile('big');
  assert.ok(file instanceof bucketsync.VaultFile);
  assert.equal(file.size, data.length);
  assert.equal(file.type, '');
  assert.equal(requests.length, 0, 'opening fetches nothing');
  // A small slice in the middle fetches the chunks around it and 4 MiB of read-ahead (a few
  // ranges, as the chunks lie in packs), not the file.
  const middle = file.slice(4 * MiB + 10, 4 * MiB + 1010);
  assert.equal(middle.size, 1000);
  assert.equal(requests.length, 0, 'slicing fetches nothing');
  assert.deepEqual(await middle.bytes(), new Uint8Array(data.subarray(4 * MiB + 10, 4 * MiB + 1010)));
  assert.ok(requests.length >= 1, 'the slice was fetched');
  assert.ok(received < data.length, `${received} bytes fetched for 1000 of ${data.length}`);
  // Slices as Blob.slice takes them: negative from the end, clamped, a slice of a slice.
  assert.deepEqual(await file.slice(-100).bytes(), new Uint8Array(data.subarray(data.length - 100)));
  assert.deepEqual(await file.slice(-100, -40).bytes(), new Uint8Array(data.subarray(data.length - 100, data.length - 40)));
  assert.equal(file.slice(50, 10).size, 0);
  assert.equal(file.slice(0, data.length + 99).size, data.length);
  assert.equal(file.slice(5, 6, 'Text/Plain').type, 'text/plain');
  const inner = file.slice(MiB, 3 * MiB).slice(MiB - 7, MiB + 7);
  assert.deepEqual(await inner.bytes(), new Uint8Array(data.subarray(2 * MiB - 7, 2 * MiB + 7)));
  // Several reads at once: they run one after the other, each right.
  const [a, b] = await Promise.all([file.slice(0, 3000).bytes(), file.slice(8 * MiB, 8 * MiB + 3000).bytes()]);
  assert.deepEqual(a, new Uint8Array(data.subarray(0, 3000)));
  assert.deepEqual(b, new Uint8Array(data.subarray(8 * MiB, 8 * MiB + 3000)));
  // The whole, as a stream and as an ArrayBuffer.
  const pieces = [];
  for await (const piece of file.stream()) pieces.push(piece);
  assert.ok(pieces.length >= 9, `${pieces.length} pieces`);
  assert.equal(sha256(Buffer.concat(pieces)), sha256(data));
  assert.equal(sha256(Buffer.from(await file.arrayBuffer())), sha256(data));

  assert.equal(await reader.openFile('small').text(), 'héllo, small file');
  assert.equal(reader.openFile('nothing'), null);
  assert.throws(() => reader.openFile('plain'), bucketsync.ConfigError);
  // It keeps reading the version it opened.
  await writer.putFile('small', new TextEncoder().encode('replaced'));
  await writer.sync();
  const opened = reader.openFile('small');
  await reader.sync();
  assert.equal(await opened.text(), 'héllo, small file');
  assert.equal(await reader.openFile('small').text(), 'replaced');
  // An aborted read rejects with the reason.
  const controller = new AbortController();
  const reason = new Error('not any more');
  controller.abort(reason);
  await assert.rejects(file.bytes({ signal: controller.signal }), (e) => e === reason);
});

test('files: an aborted or failed putFile leaves the key as it was, and its error says why', async () => {
  const { writer } = await fileVaults('abort-put/');
  const first = randomBytes(2 * MiB);
  await writer.putFile('doc', first, { packSize: MiB });
  const before = writer.fileInfo('doc');

  // Aborted half-way (a reason of our own): the old version stays.
  const controller = new AbortController();
  const reason = new Error('the user pressed cancel');
  const seen = [];
  let abortedAt;
  await assert.rejects(writer.putFile('doc', randomBytes(5 * MiB), {
    packSize: MiB,
    signal: controller.signal,
    onProgress: (p) => {
      seen.push(p.bytesDone);
      if (p.bytesDone >= 2 * MiB && !abortedAt) {
        abortedAt = performance.now();
        controller.abort(reason);
      }
    },
  }), (e) => e === reason);
  // At once: not after its aborted requests failed five times with backoff (over 750 ms).
  assert.ok(performance.now() - abortedAt < 500, `stopped ${performance.now() - abortedAt} ms after the abort`);
  assert.ok(seen.at(-1) < 5 * MiB, 'stopped before the end');
  assert.deepEqual(writer.fileInfo('doc'), before);
  assert.equal(writer.fileInfo('never'), null);
  // Aborted before it starts: the default reason, an AbortError.
  await assert.rejects(writer.putFile('never', first, { signal: AbortSignal.abort() }), (e) => e.name === 'AbortError');
  assert.equal(writer.fileInfo('never'), null);

  // What onProgress throws stops the transfer, and is what it rejects with.
  const thrown = new RangeError('from the callback');
  await assert.rejects(writer.putFile('doc', randomBytes(3 * MiB), {
    packSize: MiB,
    onProgress: (p) => { if (p.requestsDone >= 1) throw thrown; },
  }), (e) => e === thrown);
  assert.deepEqual(writer.fileInfo('doc'), before);

  // A source stream that fails: ConfigError, its error as the cause.
  const broken = new Error('the disk went away');
  let sent = 0;
  const failing = new ReadableStream({
    pull(c) {
      if (sent++ < 3) c.enqueue(randomBytes(MiB));
      else c.error(broken);
    },
  });
  await assert.rejects(writer.putFile('doc', failing, { packSize: MiB }), (e) =>
    e instanceof bucketsync.ConfigError && e.cause === broken && /the disk went away/.test(e.message));
  assert.deepEqual(writer.fileInfo('doc'), before);

  // After all that, the file still reads back whole.
  assert.equal(sha256(await blobBytes(await writer.getFile('doc'))), sha256(first));
});

test('files: a failed or aborted getFile leaves nothing at the path; a stream target is aborted', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bucketsync-getfail-'));
  const { key, store, writer } = await fileVaults('get-fail/');
  const data = randomBytes(4 * MiB);
  await writer.putFile('f', data, { packSize: MiB });
  await writer.sync();

  // A store that damages one byte of every ranged pack read: CorruptError, nothing at the path.
  const damaging = async (url, init) => {
    const response = await fetch(url, init);
    if (!new Headers(init.headers).has('range')) return response;
    const body = new Uint8Array(await response.arrayBuffer());
    body[body.length >> 1] ^= 1;
    return new Response(body, { status: response.status, headers: response.headers });
  };
  const damaged = await Vault.open({ store, key, credentials: server.credentials, fetch: damaging });
  await damaged.sync();
  await assert.rejects(damaged.getFile('f', join(dir, 'out.bin')), (e) => e instanceof bucketsync.CorruptError);
  assert.deepEqual(readdirSync(dir), [], 'no file, no partial file');
  let aborted;
  const target = new WritableStream({ abort(reason) { aborted = reason; } });
  await assert.rejects(damaged.getFile('f', target), (e) => e instanceof bucketsync.CorruptError);
  assert.ok(aborted instanceof bucketsync.CorruptError, 'the target stream was aborted with the error');

  // Aborted half-way.
  const reader = await Vault.open({ store, key, credentials: server.credentials });
  await reader.sync();
  const controller = new AbortController();
  await assert.rejects(reader.getFile('f', join(dir, 'out.bin'), {
    signal: controller.signal,
    onProgress: (p) => { if (p.bytesDone > 0) controller.abort(); },
  }), (e) => e.name === 'AbortError');
  assert.deepEqual(readdirSync(dir), [], 'no file, no partial file');
  // A target that fails: ConfigError with its error as the cause.
  const full = new Error('no space left');
  await assert.rejects(reader.getFile('f', new WritableStream({ write() { throw full; } })), (e) =>
    e instanceof bucketsync.ConfigError && e.cause === full);
  // And then it reads.
  assert.equal(await reader.getFile('f', join(dir, 'out.bin')), true);
  assert.equal(sha256(readFileSync(join(dir, 'out.bin'))), sha256(data));
});

test('files: packs of 32 MiB go up as multipart uploads (POSTs with their bodies)', async () => {
  const key = await VaultKey.generate();
  const store = server.store('node-files', 'multipart/');
  const sent = [];
  const recording = (url, init) => {
    sent.push({ method: init.method, query: new URL(url).search, body: init.body?.length ?? 0 });
    return fetch(url, init);
  };
  const writer = await Vault.create({ store, key, credentials: server.credentials, fetch: recording });
  const data = randomBytes(20 * MiB);
  const report = await writer.putFile('big', data, { packSize: 32 * MiB });
  assert.ok(report.packs >= 1 && report.packs <= 2, `${report.packs} packs (two are open at a time)`);
  const posts = sent.filter((r) => r.method === 'POST');
  assert.ok(posts.some((r) => r.query === '?uploads'), 'CreateMultipartUpload');
  const complete = posts.find((r) => r.query.startsWith('?uploadId='));
  assert.ok(complete && complete.body > 0, 'CompleteMultipartUpload with its part list');
  // Chunks go to two open packs at random: 20 MiB makes at least one of them a multipart pack
  // of two parts or more, the first of exactly 8 MiB (a pack under 8 MiB is a plain PUT).
  const parts = sent.filter((r) => r.method === 'PUT' && r.query.includes('partNumber='));
  assert.ok(parts.length >= 2, `${parts.length} parts`);
  assert.ok(parts.filter((r) => r.query.startsWith('?partNumber=1&')).every((r) => r.body === 8 * MiB));
  await writer.sync();
  const reader = await Vault.open({ store, key, credentials: server.credentials });
  await reader.sync();
  assert.equal(sha256(await blobBytes(await reader.getFile('big'))), sha256(data));
});

test('files interop: what Node stores Python reads, and back', async () => {
  const python = process.env.BUCKETSYNC_PYTHON ?? join(homedir(), '.cache/bucketsync/pyvenv/bin/python');
  const dir = mkdtempSync(join(tmpdir(), 'bucketsync-files-interop-'));
  const { key, store, writer } = await fileVaults('interop/');
  const data = randomBytes(3 * MiB);
  await writer.putFile('from/node', data, { packSize: MiB });
  await writer.sync();
  const script = `
import sys, bucketsync
key = bucketsync.VaultKey.from_recovery_code(sys.argv[2])
creds = bucketsync.Credentials(sys.argv[3], sys.argv[4])
with bucketsync.Vault.open(sys.argv[1], key, credentials=creds) as v:
    v.sync()
    v.get_file("from/node", sys.argv[5] + "/py-got.bin")
    v.put_file("from/python", sys.argv[5] + "/py-got.bin", pack_size=1 << 20)
    v.sync()
`;
  execFileSync(python, ['-c', script, store, key.recoveryCode(), server.accessKeyId, server.secretAccessKey, dir], { cwd: root });
  assert.equal(sha256(readFileSync(join(dir, 'py-got.bin'))), sha256(data));
  await writer.sync();
  assert.equal(sha256(await blobBytes(await writer.getFile('from/python'))), sha256(data));
  assert.equal(writer.fileInfo('from/python').contentHash, writer.fileInfo('from/node').contentHash);
});
