// A real headless Chromium: the notes page (examples/web) loads the package from localhost and
// syncs to SeaweedFS on another origin; a second browser context (another profile) reads the
// note back. Assertions are on what the pages show. A blank test page (tests/page.html) scripts
// the package itself, with a signer backed by this process (an auth service that presigns).
// The sharing page (examples/web/share.html) runs in two profiles: two people.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

import { ConfigError, Vault, VaultKey, invitationInfo, presign, remoteSigner } from '../js/index.js';
import { serve } from '../../examples/web/serve.mjs';
import { allowOrigin, launchChromium, root, startServer } from './helpers.mjs';


let s3, web, browser;
before(async () => {
  s3 = await startServer('web-notes', 'web-signer', 'web-share');
  web = await serve(0);
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  web?.close();
  await s3?.stop();
});

async function openNotes(code, context, { auto = false, query = '' } = {}) {
  context ??= await browser.newContext();
  const page = await context.newPage();
  const origin = `http://127.0.0.1:${web.address().port}`;
  await page.goto(`${origin}/examples/web/index.html${query}`);
  if (auto) await page.check('#auto');
  await page.fill('#store', s3.store('web-notes', 'notes/'));
  await page.fill('#access-key', s3.accessKeyId);
  await page.fill('#secret-key', s3.secretAccessKey);
  await page.fill('#code', code);
  await page.click('#connect');
  await page.waitForFunction(() => document.querySelector('#status').textContent.startsWith('Connected'));
  return { page, context };
}

test('two browser profiles see each other\'s notes through the bucket', async () => {
  await allowOrigin(s3, 'web-notes', `http://127.0.0.1:${web.address().port}`);
  // No code typed: the page creates a new vault and shows its recovery code.
  const one = await openNotes('');
  const code = await one.page.inputValue('#code');
  assert.match(code, /^[0-9A-Z]{4}(-[0-9A-Z]{4}){13}$/);
  await one.page.fill('#note', 'hello from tab one');
  await one.page.click('#add button');
  await one.page.click('#sync');
  await one.page.waitForFunction(() => /^(Synced|[a-z-]+:)/.test(document.querySelector('#status').textContent));
  assert.match(await one.page.textContent('#status'), /^Synced: pushed 1/);

  const two = await openNotes(code);
  assert.deepEqual(await two.page.$$eval('#notes li', (items) => items.map((li) => li.textContent)), []);
  await two.page.click('#sync');
  await two.page.waitForFunction(() => /^(Synced|[a-z-]+:)/.test(document.querySelector('#status').textContent));
  assert.match(await two.page.textContent('#status'), /^Synced: pushed 0, pulled 1/);
  assert.deepEqual(await two.page.$$eval('#notes li', (items) => items.map((li) => li.textContent)), ['hello from tab one']);

  // And back: tab two writes, tab one pulls it.
  await two.page.fill('#note', 'and hello back');
  await two.page.click('#add button');
  await two.page.click('#sync');
  await two.page.waitForFunction(() => document.querySelector('#status').textContent.startsWith('Synced: pushed 1'));
  await one.page.click('#sync');
  await one.page.waitForFunction(() => document.querySelector('#status').textContent.includes('pulled 1'));
  const notes = await one.page.$$eval('#notes li', (items) => items.map((li) => li.textContent));
  assert.deepEqual(notes.sort(), ['and hello back', 'hello from tab one']);
  await one.context.close();
  await two.context.close();
});

/** The sharing page in a new profile (a person), their new home open. */
async function openHome() {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`http://127.0.0.1:${web.address().port}/examples/web/share.html`);
  await page.fill('#store', s3.store('web-share', 'people/'));
  await page.fill('#access-key', s3.accessKeyId);
  await page.fill('#secret-key', s3.secretAccessKey);
  await page.click('#open-home');
  await settled(page);
  assert.equal(await page.textContent('#status'), 'Home open.');
  return { page, context };
}

/** Waits until the sharing page's status says an action ended (done, or an error's category). */
async function settled(page, previous) {
  await page.waitForFunction((before) => {
    const text = document.querySelector('#status').textContent;
    return text !== before && text !== 'Syncing…' && text !== 'No home open.';
  }, previous);
}

/** Clicks `button` on the sharing page and waits for the status that follows. */
async function press(page, button) {
  await page.evaluate(() => { document.querySelector('#status').textContent = ''; });
  await page.click(button);
  await settled(page, '');
  return page.textContent('#status');
}

const listed = (page, list) => page.$$eval(`#${list} li`, (items) => items.map((li) => li.textContent));

test('the sharing page: Alice shares a vault with Bob in another profile; he writes, she reads; she revokes him', async () => {
  await allowOrigin(s3, 'web-share', `http://127.0.0.1:${web.address().port}`);
  const alice = await openHome();
  const bob = await openHome();
  const aliceFingerprint = await alice.page.textContent('#fingerprint');
  const bobFingerprint = await bob.page.textContent('#fingerprint');
  assert.match(aliceFingerprint, /^[0-9A-Z]{4}(-[0-9A-Z]{4}){3}$/);
  assert.notEqual(aliceFingerprint, bobFingerprint);

  // Alice makes "family", writes a note, and shares it with Bob's public identity.
  await alice.page.fill('#label', 'family');
  assert.equal(await press(alice.page, '#create'), 'Created "family".');
  await alice.page.fill('#note', 'from Alice');
  await alice.page.click('#add button');
  assert.match(await press(alice.page, '#sync'), /^Synced: pushed 1/);
  await alice.page.fill('#recipient', await bob.page.inputValue('#public'));
  await alice.page.selectOption('#role', 'write');
  assert.match(await press(alice.page, '#share'), /^Invitation ready/);
  const invitation = await alice.page.inputValue('#invitation');
  assert.match(invitation, /^bsinv1/);

  // Bob accepts it only from the fingerprint Alice told him.
  await bob.page.fill('#incoming', invitation);
  await bob.page.fill('#from', '0000-0000-0000-0000');
  assert.match(await press(bob.page, '#accept'), /^access: .*the invitation comes from/);
  await bob.page.fill('#from', aliceFingerprint);
  assert.equal(await press(bob.page, '#accept'), `Accepted "family" (write) from ${aliceFingerprint}.`);
  assert.deepEqual(await listed(bob.page, 'notes'), ['from Alice']);
  await bob.page.fill('#note', 'from Bob');
  await bob.page.click('#add button');
  assert.match(await press(bob.page, '#sync'), /^Synced: pushed 1/);

  assert.match(await press(alice.page, '#sync'), /^Synced: pushed 0, pulled 1/);
  assert.deepEqual((await listed(alice.page, 'notes')).sort(), ['from Alice', 'from Bob']);
  assert.deepEqual((await listed(alice.page, 'members')).sort(),
    [`${aliceFingerprint}: owner`, `${bobFingerprint}: write`].sort());

  // Alice revokes Bob: his next sync is refused, and what he writes counts for nobody.
  await alice.page.fill('#revoke-who', bobFingerprint);
  assert.equal(await press(alice.page, '#revoke'), `Revoked ${bobFingerprint} (was write).`);
  assert.ok((await listed(alice.page, 'members')).includes(`${bobFingerprint}: revoked`));
  await bob.page.fill('#note', 'after the revocation');
  await bob.page.click('#add button');
  assert.match(await press(bob.page, '#sync'), /^access: /);
  await alice.page.fill('#note', 'after Bob left');
  await alice.page.click('#add button');
  assert.match(await press(alice.page, '#sync'), /^Synced: pushed 1/);
  assert.deepEqual((await listed(alice.page, 'notes')).sort(), ['after Bob left', 'from Alice', 'from Bob']);
  await alice.context.close();
  await bob.context.close();
});

test('two tabs of one profile on one vault both end up with every note', async () => {
  await allowOrigin(s3, 'web-notes', `http://127.0.0.1:${web.address().port}`);
  const first = await openNotes('');
  const code = await first.page.inputValue('#code');
  // The same profile (context): one IndexedDB, one set of Web Locks.
  const second = await openNotes(code, first.context);
  assert.match(await second.page.textContent('#status'), /a second tab: a device of its own/);
  const devices = await Promise.all([first, second].map((t) => t.page.textContent('#status')));
  const [one, two] = devices.map((text) => /device ([0-9a-f]{32})/.exec(text)?.[1]);
  assert.ok(one && two && one !== two, `two devices: ${devices}`);

  for (const [tab, text] of [[first, 'written in tab one'], [second, 'written in tab two']]) {
    await tab.page.fill('#note', text);
    await tab.page.click('#add button');
    await tab.page.waitForFunction(() => document.querySelector('#status').textContent.includes('to sync'));
  }
  for (const tab of [first, second, first]) {
    await tab.page.click('#sync');
    await tab.page.waitForFunction(() => /^(Synced|[a-z-]+:)/.test(document.querySelector('#status').textContent));
    assert.match(await tab.page.textContent('#status'), /^Synced/);
  }
  for (const tab of [first, second]) {
    const notes = await tab.page.$$eval('#notes li', (items) => items.map((li) => li.textContent));
    assert.deepEqual(notes.sort(), ['written in tab one', 'written in tab two']);
  }
  await first.context.close();
});

test('background sync in two profiles: a note shows in the other without a click; offline pauses it, online catches up', async () => {
  const origin = `http://127.0.0.1:${web.address().port}`;
  await allowOrigin(s3, 'web-notes', origin);
  const options = { auto: true, query: '?interval=1' };
  const one = await openNotes('', undefined, options);
  const code = await one.page.inputValue('#code');
  const two = await openNotes(code, undefined, options);
  // Two's requests to the change hint, and how the bucket answered (through CORS).
  const polls = [];
  two.page.on('response', (response) => {
    if (new URL(response.url()).pathname.endsWith('/h')) polls.push(response.status());
  });
  const notes = (tab) => tab.page.$$eval('#notes li', (items) => items.map((li) => li.textContent));
  const live = (tab) => tab.page.textContent('#live');
  for (const tab of [one, two]) {
    await tab.page.waitForFunction(() => document.querySelector('#live').textContent === 'Background sync: idle');
  }

  // No click on Sync anywhere: one's background sync pushes the note a second after it is
  // added, and two's next poll brings it in.
  await one.page.fill('#note', 'live from one');
  let added = Date.now();
  await one.page.click('#add button');
  await two.page.waitForFunction(() => [...document.querySelectorAll('#notes li')].some((li) => li.textContent === 'live from one'),
    null, { timeout: 10000 });
  const delay = Date.now() - added;
  console.log(`a note added in profile one shows in profile two after ${delay} ms (debounce 1 s, interval 1 s)`);
  assert.ok(delay < 5000, `${delay} ms`);

  // Idle: two's polls are conditional GETs of the hint answered 304 (the CORS rule allows
  // If-None-Match and exposes ETag).
  polls.length = 0;
  await new Promise((resolve) => setTimeout(resolve, 3000));
  assert.ok(polls.length >= 2 && polls.every((status) => status === 304), `hint polls while idle: ${polls}`);

  // Two goes offline: its page says so, and one's next note does not reach it...
  await two.context.setOffline(true);
  await two.page.waitForFunction(() => document.querySelector('#live').textContent === 'Background sync: offline');
  polls.length = 0;
  await one.page.fill('#note', 'while two was offline');
  await one.page.click('#add button');
  await one.page.waitForFunction(() => document.querySelector('#status').textContent.includes('to sync'));
  await new Promise((resolve) => setTimeout(resolve, 3500));
  assert.deepEqual(await notes(two), ['live from one']);
  assert.deepEqual(polls, [], 'no request while offline');
  // ...until it is back online: it syncs at once.
  added = Date.now();
  await two.context.setOffline(false);
  await two.page.waitForFunction(() => [...document.querySelectorAll('#notes li')].some((li) => li.textContent === 'while two was offline'),
    null, { timeout: 10000 });
  console.log(`back online to the missed note: ${Date.now() - added} ms`);
  await two.page.waitForFunction(() => document.querySelector('#live').textContent === 'Background sync: idle');
  assert.deepEqual((await notes(one)).sort(), (await notes(two)).sort());

  // Unticked: the loop stops.
  await two.page.uncheck('#auto');
  assert.equal(await live(two), '');
  assert.equal(await two.page.evaluate(() => document.querySelector('#auto').checked), false);
  await one.context.close();
  await two.context.close();
});

test('background sync across tabs of one profile: one loop per local state (Web Lock); a hidden page polls at the background interval', async () => {
  const origin = `http://127.0.0.1:${web.address().port}`;
  await allowOrigin(s3, 'web-notes', origin);
  const context = await browser.newContext();
  const code = (await (await import('../js/index.js')).VaultKey.generate()).recoveryCode();
  // Two tabs on the same replica (the same device id, no storage): the state lock does not
  // apply, the background sync's lock does.
  const device = '0123456789abcdef0123456789abcdef';
  const tabs = [];
  for (let i = 0; i < 2; i++) {
    const page = await context.newPage();
    await page.goto(`${origin}/bindings-wasm/tests/page.html`);
    await page.evaluate(async ({ store, code, device, credentials }) => {
      const { Vault, VaultKey } = await import('/bindings-wasm/js/index.js');
      window.sent = [];
      const counting = (url, init) => {
        window.sent.push(`${init.method} ${new URL(url).pathname}`);
        return fetch(url, init);
      };
      window.vault = await Vault.open({ store, key: await VaultKey.fromRecoveryCode(code), device, credentials,
        mode: 'join-or-create', fetch: counting });
      window.events = [];
      window.running = 'waiting';
      window.vault.startAutoSync({ interval: 1, backgroundInterval: 30, onEvent: (e) => window.events.push(e.kind) })
        .then((started) => { window.running = started; });
    }, { store: s3.store('web-notes', 'tabs/'), code, device, credentials: s3.credentials });
    tabs.push(page);
  }
  const [first, second] = tabs;
  await first.waitForFunction(() => window.running === true);
  await new Promise((resolve) => setTimeout(resolve, 2000));
  // The second tab waits for the lock: started, but no loop, no request, no event.
  assert.deepEqual(await second.evaluate(() => [window.running, window.vault.autoSyncing, window.sent, window.events]),
    ['waiting', true, [], []]);
  assert.ok((await first.evaluate(() => window.sent.length)) >= 2, 'the first tab polls');

  // The first tab stops: the second one's loop starts.
  await first.evaluate(() => window.vault.stopAutoSync());
  await second.waitForFunction(() => window.running === true, null, { timeout: 5000 });
  await second.waitForFunction(() => window.events.includes('state'));

  // Hidden (the page's visibilitychange): polls every 30 s instead of every second; shown
  // again, at once and every second.
  const hide = (hidden) => second.evaluate((hidden) => {
    Object.defineProperty(document, 'visibilityState', { value: hidden ? 'hidden' : 'visible', configurable: true });
    document.dispatchEvent(new Event('visibilitychange'));
  }, hidden);
  await new Promise((resolve) => setTimeout(resolve, 1500));
  await hide(true);
  await new Promise((resolve) => setTimeout(resolve, 500)); // a poll under way
  await second.evaluate(() => { window.sent.length = 0; });
  await new Promise((resolve) => setTimeout(resolve, 3000));
  assert.deepEqual(await second.evaluate(() => window.sent), [], 'no poll while hidden');
  await hide(false);
  await new Promise((resolve) => setTimeout(resolve, 2500));
  assert.ok((await second.evaluate(() => window.sent.length)) >= 2, 'polls again once visible');

  // Closing the vault stops the loop and lets go of the lock: the first tab can start again.
  await second.evaluate(() => window.vault.close());
  assert.equal(await first.evaluate(() => window.vault.startAutoSync({ interval: 1 })), true);
  await first.evaluate(() => window.vault.close());
  await context.close();
});

test('in a browser, a signer adds to the engine\'s headers: a presigned create is still conditional', async () => {
  const origin = `http://127.0.0.1:${web.address().port}`;
  await allowOrigin(s3, 'web-signer', origin);
  const context = await browser.newContext();
  const page = await context.newPage();
  // The auth service stays in this process: the page gets presigned URLs, never the secret.
  const asked = [];
  // ANCHOR: auth_service
  await page.exposeFunction('authService', async ({ method, url }) => {
    asked.push(method);
    return {
      url: await presign({ method, url, credentials: s3.credentials, expiresSeconds: 60 }),
      headers: [['x-from-signer', 'yes']],
    };
  });
  // ANCHOR_END: auth_service
  // What Chromium put on the wire (after CORS), beside what the page handed to fetch.
  const wire = [];
  page.on('request', (request) => {
    if (request.method() === 'PUT') wire.push(request);
  });
  await page.goto(`${origin}/bindings-wasm/tests/page.html`);
  const result = await page.evaluate(async (store) => {
    const { Vault, VaultKey } = await import('/bindings-wasm/js/index.js');
    const sent = [];
    const recordingFetch = (url, init) => {
      sent.push({ url, method: init.method, headers: [...new Headers(init.headers)], body: init.body?.slice() });
      return fetch(url, init);
    };
    // ANCHOR: page_signer
    const signer = ({ method, url }) => window.authService({ method, url });
    const vault = await Vault.create({ store, key: await VaultKey.generate(), signer, fetch: recordingFetch });
    // ANCHOR_END: page_signer
    await vault.put('k', 'v');
    // A failed sync is reported after the checks on what it sent (they say more).
    const synced = await vault.sync().then((report) => report.pushed, (e) => `sync failed: ${e}`);
    const put = sent.find((r) => r.method === 'PUT' && new URL(r.url).pathname.includes('/s/'));
    if (!put) return { synced, sent: sent.map((r) => `${r.method} ${r.url}`) };
    // The very same presigned create again, from the page: the object exists now.
    let again;
    try {
      again = (await fetch(put.url, { method: 'PUT', headers: put.headers, body: put.body })).status;
    } catch (e) {
      again = `fetch failed: ${e}`;
    }
    // The sync itself may have sent this URL more than once (the engine's own check that the
    // store refuses a second create); the replay is the last request to it.
    const bySync = sent.filter((r) => r.url === put.url).length;
    return { synced, put: { url: put.url, headers: put.headers }, bySync, again };
  }, s3.store('web-signer', 'conditional/'));

  assert.ok(result.put, `a segment PUT went out (${result.synced}): ${result.sent}`);
  assert.ok(asked.includes('PUT'), 'the auth service presigned the PUTs');
  const url = new URL(result.put.url);
  assert.ok(url.searchParams.has('X-Amz-Signature'), 'the PUT used the presigned URL');
  const headers = new Map(result.put.headers);
  assert.equal(headers.get('if-none-match'), '*');
  assert.equal(headers.get('x-from-signer'), 'yes');
  assert.equal(headers.get('authorization'), undefined);
  // Chromium sent both headers (a failed preflight would have failed the sync), and the store
  // answered the replay, the same PUT once more, with 412 (seen by the page and on the wire).
  const onWire = () => wire.filter((r) => r.url() === result.put.url);
  // The page's answer may come back before playwright reports the replay's request.
  for (const deadline = Date.now() + 5000; onWire().length < result.bySync + 1 && Date.now() < deadline;) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const segmentPuts = onWire();
  assert.equal(segmentPuts.length, result.bySync + 1, `the sync's and the replay: ${wire.map((r) => r.url())}`);
  const [first, replay] = await Promise.all([segmentPuts[0], segmentPuts.at(-1)].map(async (r) => ({
    headers: await r.allHeaders(),
    status: (await r.response()).status(),
    body: r.postDataBuffer(),
  })));
  for (const r of [first, replay]) {
    assert.equal(r.headers['if-none-match'], '*');
    assert.equal(r.headers['x-from-signer'], 'yes');
  }
  assert.equal(first.status, 200);
  assert.ok(first.body.length > 0 && first.body.equals(replay.body), 'the replay sent the same body');
  assert.equal(replay.status, 412);
  assert.equal(result.again, 412);
  assert.equal(result.synced, 1, 'the sync pushed the record');
  await context.close();
});

test('in a browser, remoteSigner gets every URL from the CLI\'s signer service: the page holds no S3 key', async () => {
  // The service is the CLI's: `cargo test` (scripts/test.sh) builds it before the npm tests.
  const binary = join(root, 'target/debug/bucketsync');
  assert.ok(existsSync(binary), `${binary} is missing: build it first (cargo build -p bucketsync-cli)`);
  const dir = await mkdtemp(join(tmpdir(), 'bucketsync-signer-'));
  const token = 'browser-test-token-0123456789';
  await writeFile(join(dir, 'token'), `${token}\n`);
  const store = s3.store('web-signer', 'remote/');
  const env = { ...process.env, AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey };
  delete env.AWS_SESSION_TOKEN;
  delete env.AWS_PROFILE;
  // ANCHOR: spawn_signer
  const service = spawn(binary, ['--store', store, '--json', 'signer', '--listen', '127.0.0.1:0',
    '--token-file', join(dir, 'token'), '--expires', '2m'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    // ANCHOR_END: spawn_signer
  let log = '';
  service.stderr.on('data', (data) => { log += data; });
  const exited = once(service, 'exit');
  const context = await browser.newContext();
  try {
    const line = await Promise.race([
      once(createInterface({ input: service.stdout }), 'line').then(([first]) => first),
      exited.then(([code]) => { throw new Error(`the signer exited (${code}): ${log}`); }),
    ]);
    const signUrl = JSON.parse(line).sign;
    const origin = `http://127.0.0.1:${web.address().port}`;
    await allowOrigin(s3, 'web-signer', origin);
    const page = await context.newPage();
    await page.goto(`${origin}/bindings-wasm/tests/page.html`);
    const result = await page.evaluate(async ({ store, endpoint, signUrl, token }) => {
      const { Vault, VaultKey, remoteSigner } = await import('/bindings-wasm/js/index.js');
      // ANCHOR: remote_signer
      const signer = remoteSigner(signUrl, token);
      const errors = (report) => report.errors.map((e) => `${e.category}: ${e.message}`);
      const key = await VaultKey.generate();
      const one = await Vault.create({ store, key, signer });
      await one.put('records/visit-1', 'blood pressure 120/80');
      const pushed = await one.sync();
      await one.close();
      // Another device: the same store and key, signed by the same service.
      const two = await Vault.open({ store, key: await VaultKey.fromRecoveryCode(key.recoveryCode()), signer });
      const pulled = await two.sync();
      const value = two.getString('records/visit-1');
      // ANCHOR_END: remote_signer
      await two.close();
      // What the service refuses reaches the caller with its reason.
      const refused = async (s, method, url) => s({ method, url, headers: [], body: new Uint8Array() })
        .then(() => 'signed', (e) => e.message);
      const objectUrl = `${endpoint}/web-signer/remote/k`;
      return {
        pushed: pushed.pushed,
        pushErrors: errors(pushed),
        pulled: pulled.pulled,
        pullErrors: errors(pulled),
        value,
        deleted: await refused(signer, 'DELETE', objectUrl),
        outside: await refused(signer, 'GET', objectUrl.replace('/remote/', '/elsewhere/')),
        wrongToken: await refused(remoteSigner(signUrl, 'not-the-token-0123456789'), 'GET', objectUrl),
      };
    }, { store, endpoint: s3.endpoint, signUrl, token });

    assert.deepEqual(result.pushErrors, []);
    assert.equal(result.pushed, 1, 'the first vault pushed its record');
    assert.deepEqual(result.pullErrors, []);
    assert.equal(result.pulled, 1, 'the second vault pulled it');
    assert.equal(result.value, 'blood pressure 120/80');
    assert.match(result.deleted, /refused DELETE: DELETE only of a vault's segments, checkpoints and packs .*\(403\)/);
    assert.match(result.outside, /refused GET: a key outside the store's prefix \(403\)/);
    assert.match(result.wrongToken, /bearer token \(401\)/);
    // Every S3 request of both syncs went through the service, and nothing else was refused.
    const answers = log.trim().split('\n').map((l) => l.split(' ')[3]);
    assert.ok(answers.filter((a) => a === '200').length >= 4, log);
    assert.equal(answers.filter((a) => a === '403').length, 2, log);
    assert.ok(!log.includes(token) && !log.includes('Signature'), log);
  } finally {
    await context.close();
    service.kill();
    await exited;
    await rm(dir, { recursive: true, force: true });
  }
});

test('in a browser, a vault synced only through the signer collects its garbage (segment and checkpoint DELETEs signed)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'bucketsync-signer-gc-'));
  const token = 'browser-gc-token-0123456789';
  await writeFile(join(dir, 'token'), `${token}\n`);
  const store = s3.store('web-signer', 'collects/');
  const signer = await startSigner(store, ['--token-file', join(dir, 'token'), '--expires', '2m']);
  const context = await browser.newContext();
  try {
    const origin = `http://127.0.0.1:${web.address().port}`;
    await allowOrigin(s3, 'web-signer', origin);
    const page = await context.newPage();
    await page.goto(`${origin}/bindings-wasm/tests/page.html`);
    const result = await page.evaluate(async ({ store, signUrl, token }) => {
      const { Vault, VaultKey, remoteSigner } = await import('/bindings-wasm/js/index.js');
      const signer = remoteSigner(signUrl, token);
      const deletes = [];
      const recording = async (url, init) => {
        const response = await fetch(url, init);
        if (init?.method === 'DELETE') deletes.push(response.status);
        return response;
      };
      // A short grace, so that segment collection's heartbeat (grace / 8) passes within the test.
      const vault = await Vault.create({ store, key: await VaultKey.generate(), signer, fetch: recording,
        graceDays: 8 / 86400, maxClockSkewDays: 0 });
      const errors = [];
      // Twenty segments: enough for a checkpoint (compaction), which lets the older ones go.
      for (let i = 0; i < 20; i++) {
        await vault.put(`notes/${i % 3}`, `version ${i}`);
        errors.push(...(await vault.sync()).errors.map((e) => `${e.category}: ${e.message}`));
      }
      // Bounded by syncs: each waits a little more than the heartbeat, then syncs once.
      for (let round = 0; round < 15 && !deletes.some((s) => s >= 200 && s < 300); round++) {
        await new Promise((resolve) => setTimeout(resolve, 1100));
        await vault.put('tick', String(round));
        errors.push(...(await vault.sync()).errors.map((e) => `${e.category}: ${e.message}`));
      }
      const value = vault.getString('notes/1');
      await vault.close();
      return { deletes, errors, value };
    }, { store, signUrl: signer.sign, token });
    assert.deepEqual(result.errors, []);
    assert.equal(result.value, 'version 19');
    assert.ok(result.deletes.length > 0, 'the vault sent DELETEs through the signer');
    assert.ok(result.deletes.every((s) => s === 204 || s === 200 || s === 404), `answers: ${result.deletes}`);
    // The service signed them (200) and refused nothing.
    const lines = signer.log().trim().split('\n');
    const signedDeletes = lines.filter((l) => l.includes(' DELETE ') && l.split(' ')[3] === '200');
    assert.equal(signedDeletes.length, result.deletes.length, signer.log());
    assert.ok(!lines.some((l) => l.split(' ')[3] === '403'), signer.log());
  } finally {
    await context.close();
    await signer.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

/** Starts the CLI's signer for `store` with `args`; resolves to its `/sign` URL and its log. */
async function startSigner(store, args) {
  const binary = join(root, 'target/debug/bucketsync');
  assert.ok(existsSync(binary), `${binary} is missing: build it first (cargo build -p bucketsync-cli)`);
  const env = { ...process.env, AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey };
  delete env.AWS_SESSION_TOKEN;
  delete env.AWS_PROFILE;
  const service = spawn(binary, ['--store', store, '--json', 'signer', '--listen', '127.0.0.1:0', ...args],
    { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  service.stderr.on('data', (data) => { log += data; });
  const exited = once(service, 'exit');
  const line = await Promise.race([
    once(createInterface({ input: service.stdout }), 'line').then(([first]) => first),
    exited.then(([code]) => { throw new Error(`the signer exited (${code}): ${log}`); }),
  ]);
  return {
    sign: JSON.parse(line).sign,
    log: () => log,
    async stop() {
      service.kill();
      await exited;
    },
  };
}

test('an invitation names the signer: Bob accepts and syncs through it with a member token, holding no S3 key for Alice\'s store', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'bucketsync-signer-'));
  const home = async (name) => Vault.create({ store: s3.store('web-signer', `homes/${name}/`),
    key: await VaultKey.generate(), credentials: s3.credentials });
  const [alice, bob] = [await home('alice'), await home('bob')];
  const store = s3.store('web-signer', 'family/');
  const emma = await alice.createShared(store, 'emma');
  await emma.put('school', 'Mon 8:00');
  await emma.sync();
  // Alice runs the signer for the family store: her own token, and Bob's for emma's folder.
  const bobToken = 'bob-writes-emma-0123456789';
  await writeFile(join(dir, 'token'), 'alice-owns-the-store-0123456789\n');
  await writeFile(join(dir, 'members'), `${bobToken} ${emma.vaultId} write\n`);
  const signer = await startSigner(store, ['--token-file', join(dir, 'token'), '--member-tokens', join(dir, 'members')]);
  try {
    // A signer URL that carries credentials (or is no URL) is refused before anything is sent.
    for (const bad of ['https://bob:secret@signer.example/sign', 'signer.example/sign', 'https://s.example/sign?token=secret']) {
      await assert.rejects(emma.share(bob.identity().public, { signerUrl: bad }),
        (e) => e instanceof ConfigError && /signer URL/.test(e.message) && !e.message.includes('secret'), bad);
    }
    const invitation = await emma.share(bob.identity().public, { role: 'write', signerUrl: signer.sign });
    const info = await invitationInfo(invitation);
    assert.deepEqual(info, { store: info.store, vaultId: emma.vaultId, grantedBy: alice.identity().fingerprint, signer: signer.sign });
    assert.ok(info.store.startsWith('s3://web-signer/family'), info.store);
    assert.equal((await invitationInfo(await emma.share(bob.identity().public, { role: 'write' }))).signer, null);
    await assert.rejects(invitationInfo('bsinv1 nonsense'), ConfigError);

    // Bob's home holds keys for his own store only: emma is reached through the signer alone
    // (the accept's GET, and every request of its syncs). The granter's fingerprint is the one
    // Alice told him (not the invitation's): checked before his token goes to the signer.
    const toldByAlice = alice.identity().fingerprint;
    const bobEmma = await bob.accept(invitation, { signer: remoteSigner(info.signer, bobToken), grantedBy: toldByAlice });
    await bobEmma.sync();
    assert.equal(bobEmma.getString('school'), 'Mon 8:00');
    await bobEmma.put('doctor', 'Thu 15:00');
    const pushed = await bobEmma.sync();
    assert.equal(pushed.pushed, 1);
    assert.deepEqual(pushed.errors, []);
    assert.deepEqual((await emma.sync()).errors, []);
    assert.equal(emma.getString('doctor'), 'Thu 15:00');
    // The signer answered each of Bob's requests and refused none; it logs no token.
    const answers = signer.log().trim().split('\n').map((l) => l.split(' ')[3]);
    assert.ok(answers.length >= 4 && answers.every((a) => a === '200'), signer.log());
    assert.ok(!signer.log().includes(bobToken), signer.log());
    await bobEmma.close();
  } finally {
    await signer.stop();
    await Promise.all([emma.close(), alice.close(), bob.close()]);
    await rm(dir, { recursive: true, force: true });
  }
});

test('in a browser, a home shares a vault and another home accepts it, each vault\'s state in IndexedDB', async () => {
  const origin = `http://127.0.0.1:${web.address().port}`;
  await allowOrigin(s3, 'web-notes', origin);
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${origin}/bindings-wasm/tests/page.html`);
  const result = await page.evaluate(async ({ store, credentials }) => {
    const { AccessError, Vault, VaultKey, indexedDbStorage } = await import('/bindings-wasm/js/index.js');
    const home = async (name) => Vault.create({ store, key: await VaultKey.generate(), credentials,
      storage: indexedDbStorage(`share-${name}`) });
    const [alice, bob, carol] = [await home('alice'), await home('bob'), await home('carol')];
    const emma = await alice.createShared(store, 'emma', { storage: indexedDbStorage('share-alice-emma') });
    await emma.put('school', 'Mon 8:00');
    await emma.sync();
    const invitation = await emma.share(bob.identity().public, { role: 'write' });
    const carolTried = await carol.accept(invitation).then(() => 'accepted', (e) => `${e instanceof AccessError} ${e.category}`);
    let bobEmma = await bob.accept(invitation, { storage: indexedDbStorage('share-bob-emma') });
    await bobEmma.sync();
    await bobEmma.put('doctor', 'Thu 15:00');
    await bobEmma.sync();
    await emma.sync();
    const reshare = await bobEmma.share(carol.identity().public).then(() => 'shared', (e) => e.category);
    // Reopened through Bob's home from IndexedDB alone: no request needed to read it.
    await bobEmma.close();
    bobEmma = await bob.openShared('emma', { storage: indexedDbStorage('share-bob-emma') });
    return {
      carolTried,
      reshare,
      bobShared: bob.shared().map(({ label, role, grantedBy }) => ({ label, role, grantedBy })),
      alice: alice.identity().fingerprint,
      aliceSees: emma.getString('doctor'),
      bobReads: bobEmma.getString('school'),
    };
  }, { store: s3.store('web-notes', 'sharing/'), credentials: s3.credentials });
  assert.equal(result.carolTried, 'true access');
  assert.equal(result.reshare, 'access');
  assert.deepEqual(result.bobShared, [{ label: 'emma', role: 'write', grantedBy: result.alice }]);
  assert.equal(result.aliceSees, 'Thu 15:00');
  assert.equal(result.bobReads, 'Mon 8:00');
  await context.close();
});
