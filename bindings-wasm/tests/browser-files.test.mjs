// Files in a real headless Chromium: a page (tests/page.html, scripting the package unbundled)
// stores a File picked through an <input type=file> into SeaweedFS on another origin, with
// progress events; a second browser context (another profile) reads it back through getFile
// into a WritableStream and into a Blob; an AbortSignal stops a putFile and a getFile.
// Digests are compared with what this process gave the page.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';

import { Vault, VaultKey } from '../js/index.js';
import { serve } from '../../examples/web/serve.mjs';
import { allowOrigin, launchChromium, startServer } from './helpers.mjs';

const MiB = 1 << 20;
let s3, web, origin, browser;
before(async () => {
  s3 = await startServer('web-files');
  web = await serve(0);
  origin = `http://127.0.0.1:${web.address().port}`;
  await allowOrigin(s3, 'web-files', origin);
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  web?.close();
  await s3?.stop();
});

/** A fresh profile with the test page open and the package imported as `window.bucketsync`. */
async function openPage() {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${origin}/bindings-wasm/tests/page.html`);
  await page.evaluate(async () => {
    window.bucketsync = await import('/bindings-wasm/js/index.js');
    window.hex = async (blob) => [...new Uint8Array(await crypto.subtle.digest('SHA-256', await blob.arrayBuffer()))]
      .map((b) => b.toString(16).padStart(2, '0')).join('');
  });
  return { context, page };
}

/** The page picks `bytes` as a File through an <input type=file>. */
async function pickFile(page, name, bytes) {
  await page.evaluate(() => {
    const input = document.createElement('input');
    input.type = 'file';
    document.body.replaceChildren(input);
  });
  await page.setInputFiles('input[type=file]', { name, mimeType: 'application/octet-stream', buffer: bytes });
}

const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');

test('Chromium: a picked File of several MiB goes up with progress; another profile reads it into a WritableStream and a Blob', async () => {
  const data = randomBytes(6 * MiB + 4321);
  const store = s3.store('web-files', 'photos/');
  const one = await openPage();
  await pickFile(one.page, 'photo.bin', data);
  const put = await one.page.evaluate(async ({ store, credentials }) => {
    const { Vault, VaultKey } = window.bucketsync;
    const file = document.querySelector('input').files[0];
    const key = await VaultKey.generate();
    const vault = await Vault.create({ store, key, credentials });
    const events = [];
    const report = await vault.putFile('photos/photo.bin', file, {
      packSize: 1 << 20, // the least the core takes: several packs for a few MiB
      onProgress: (p) => events.push(p),
    });
    const sync = await vault.sync();
    return {
      isFile: file instanceof File, fileSize: file.size, digest: await window.hex(file), code: key.recoveryCode(),
      report, events, info: vault.fileInfo('photos/photo.bin'), pushed: sync.pushed,
    };
  }, { store, credentials: s3.credentials });

  assert.ok(put.isFile);
  assert.equal(put.fileSize, data.length);
  assert.equal(put.digest, sha256(data), 'the page holds the bytes this process gave it');
  assert.equal(put.report.size, data.length);
  assert.ok(put.report.chunks >= 3, `${put.report.chunks} chunks`);
  // At least two packs for three chunks or more (see the same check in node.test.mjs).
  assert.ok(put.report.packs >= 2, `${put.report.packs} packs`);
  assert.equal(put.report.chunksUploaded, put.report.chunks);
  assert.deepEqual(put.info, { size: data.length, chunks: put.report.chunks, packs: put.report.packs,
    contentHash: put.info.contentHash, inline: false });
  assert.equal(put.pushed, 1);
  // Progress: bytesDone grows (never back) to the size, of a known total; requests are counted.
  assert.ok(put.events.length >= 6, `${put.events.length} events`);
  for (let i = 1; i < put.events.length; i++) {
    assert.ok(put.events[i].bytesDone >= put.events[i - 1].bytesDone, `bytesDone went back at ${i}`);
  }
  assert.ok(new Set(put.events.map((e) => e.bytesDone)).size >= 6, 'bytesDone grew in steps');
  assert.ok(put.events.every((e) => e.bytesTotal === data.length));
  assert.equal(put.events.at(-1).bytesDone, data.length);
  assert.equal(put.events.at(-1).requestsDone, put.report.requests);

  // Another profile (its own storage, its own device) reads it back.
  const two = await openPage();
  const got = await two.page.evaluate(async ({ store, credentials, code }) => {
    const { Vault, VaultKey } = window.bucketsync;
    const vault = await Vault.open({ store, key: await VaultKey.fromRecoveryCode(code), credentials });
    await vault.sync();
    const chunks = [];
    let closed = false;
    const events = [];
    const target = new WritableStream({ write(chunk) { chunks.push(chunk); }, close() { closed = true; } });
    const found = await vault.getFile('photos/photo.bin', target, { onProgress: (p) => events.push(p) });
    const blob = await vault.getFile('photos/photo.bin', { type: 'image/jpeg' });
    return {
      found, closed, pieces: chunks.length, streamed: await window.hex(new Blob(chunks)),
      events, blob: { isBlob: blob instanceof Blob, type: blob.type, size: blob.size, digest: await window.hex(blob) },
      absent: await vault.getFile('photos/none'), absentTo: await vault.getFile('photos/none', new WritableStream()),
      device: vault.device,
    };
  }, { store, credentials: s3.credentials, code: put.code });

  assert.equal(got.found, true);
  assert.ok(got.closed, 'the WritableStream was closed at the end');
  assert.ok(got.pieces >= 3, `${got.pieces} writes`);
  assert.equal(got.streamed, sha256(data));
  assert.deepEqual(got.blob, { isBlob: true, type: 'image/jpeg', size: data.length, digest: sha256(data) });
  assert.equal(got.events[0].bytesDone, 0);
  assert.equal(got.events.at(-1).bytesDone, data.length);
  assert.ok(got.events.every((e, i) => i === 0 || e.bytesDone >= got.events[i - 1].bytesDone));
  assert.equal(got.absent, null);
  assert.equal(got.absentTo, false);

  // And Node reads what the browser stored.
  const node = await Vault.open({ store, key: await VaultKey.fromRecoveryCode(put.code), credentials: s3.credentials });
  await node.sync();
  assert.equal(sha256(new Uint8Array(await (await node.getFile('photos/photo.bin')).arrayBuffer())), sha256(data));
  await one.context.close();
  await two.context.close();
});

test('Chromium: an AbortSignal stops putFile (the key is not stored) and getFile (the target is aborted)', async () => {
  const data = randomBytes(5 * MiB);
  const store = s3.store('web-files', 'abort/');
  const one = await openPage();
  await pickFile(one.page, 'big.bin', data);
  const result = await one.page.evaluate(async ({ store, credentials }) => {
    const { Vault, VaultKey } = window.bucketsync;
    const file = document.querySelector('input').files[0];
    const key = await VaultKey.generate();
    const vault = await Vault.create({ store, key, credentials });
    await vault.put('other', 'a record, so that the sync has something to push');
    const controller = new AbortController();
    let last = 0;
    let outcome;
    try {
      await vault.putFile('abort/big.bin', file, {
        packSize: 1 << 20,
        signal: controller.signal,
        onProgress: (p) => {
          last = p.bytesDone;
          if (p.bytesDone >= 2 << 20) controller.abort();
        },
      });
      outcome = 'stored';
    } catch (e) {
      outcome = { name: e.name, isReason: e === controller.signal.reason };
    }
    const info = vault.fileInfo('abort/big.bin');
    const pushed = (await vault.sync()).pushed;

    // Stored whole, then a read into a WritableStream aborted half-way: the stream is aborted
    // with the same reason.
    await vault.putFile('abort/whole.bin', file, { packSize: 1 << 20 });
    const reading = new AbortController();
    let streamAborted;
    let written = 0;
    const target = new WritableStream({
      write(chunk) { written += chunk.length; },
      abort(reason) { streamAborted = reason; },
    });
    let readOutcome;
    try {
      await vault.getFile('abort/whole.bin', target, {
        signal: reading.signal,
        onProgress: (p) => { if (p.bytesDone > 0) reading.abort(new Error('closed the tab')); },
      });
      readOutcome = 'read';
    } catch (e) {
      readOutcome = { message: e.message, isReason: e === reading.signal.reason, streamGotIt: streamAborted === e };
    }
    return { outcome, last, info, pushed, code: key.recoveryCode(), readOutcome, written, size: file.size };
  }, { store, credentials: s3.credentials });

  assert.deepEqual(result.outcome, { name: 'AbortError', isReason: true });
  assert.ok(result.last >= 2 * MiB && result.last < data.length, `stopped at ${result.last}`);
  assert.equal(result.info, null, 'the aborted file is not stored');
  assert.equal(result.pushed, 1, 'only the other record');
  assert.deepEqual(result.readOutcome, { message: 'closed the tab', isReason: true, streamGotIt: true });
  assert.ok(result.written > 0 && result.written < result.size, `${result.written} bytes written before the abort`);

  // Another device sees the other record and no aborted file.
  const two = await openPage();
  const seen = await two.page.evaluate(async ({ store, credentials, code }) => {
    const { Vault, VaultKey } = window.bucketsync;
    const vault = await Vault.open({ store, key: await VaultKey.fromRecoveryCode(code), credentials });
    await vault.sync();
    return { keys: vault.keyStrings(), info: vault.fileInfo('abort/big.bin'), file: await vault.getFile('abort/big.bin') };
  }, { store, credentials: s3.credentials, code: result.code });
  assert.deepEqual(seen, { keys: ['other'], info: null, file: null });
  await one.context.close();
  await two.context.close();
});
