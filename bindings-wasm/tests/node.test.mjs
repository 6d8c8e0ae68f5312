import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir, homedir } from 'node:os';
import { join } from 'node:path';

import * as bucketsync from '../js/index.js';
import { Vault, VaultKey } from '../js/index.js';
import { startServer, root } from './helpers.mjs';

let server;
before(async () => {
  server = await startServer('node-sync', 'node-errors', 'node-signer', 'node-interop');
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
