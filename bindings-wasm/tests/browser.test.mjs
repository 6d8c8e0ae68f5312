// A real headless Chromium: the notes page (examples/web) loads the package from localhost and
// syncs to SeaweedFS on another origin; a second browser context (another profile) reads the
// note back. Assertions are on what the pages show.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { homedir } from 'node:os';
import { join } from 'node:path';

import { signRequest } from '../js/index.js';
import { serve } from '../../examples/web/serve.mjs';
import { startServer } from './helpers.mjs';

const npm = process.env.BUCKETSYNC_NPM ?? join(homedir(), '.cache/bucketsync/npm');
const { chromium } = await import(join(npm, 'node_modules/playwright-core/index.mjs'));

let s3, web, browser;
before(async () => {
  s3 = await startServer('web-notes');
  web = await serve(0);
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});
after(async () => {
  await browser?.close();
  web?.close();
  await s3?.stop();
});

async function allowOrigin(origin) {
  const body = `<CORSConfiguration><CORSRule><AllowedOrigin>${origin}</AllowedOrigin>`
    + '<AllowedMethod>GET</AllowedMethod><AllowedMethod>PUT</AllowedMethod><AllowedMethod>HEAD</AllowedMethod>'
    + '<AllowedHeader>*</AllowedHeader><ExposeHeader>ETag</ExposeHeader><MaxAgeSeconds>600</MaxAgeSeconds>'
    + '</CORSRule></CORSConfiguration>';
  const url = `${s3.endpoint}/web-notes?cors`;
  const headers = await signRequest({
    method: 'PUT',
    url,
    headers: [['content-md5', createHash('md5').update(body).digest('base64')], ['content-type', 'application/xml']],
    body,
    credentials: s3.credentials,
  });
  const response = await fetch(url, { method: 'PUT', headers, body });
  assert.equal(response.status, 200, await response.text());
}

async function openNotes(code, context) {
  context ??= await browser.newContext();
  const page = await context.newPage();
  const origin = `http://127.0.0.1:${web.address().port}`;
  await page.goto(`${origin}/examples/web/index.html`);
  await page.fill('#store', s3.store('web-notes', 'notes/'));
  await page.fill('#access-key', s3.accessKeyId);
  await page.fill('#secret-key', s3.secretAccessKey);
  await page.fill('#code', code);
  await page.click('#connect');
  await page.waitForFunction(() => document.querySelector('#status').textContent.startsWith('Connected'));
  return { page, context };
}

test('two browser profiles see each other\'s notes through the bucket', async () => {
  await allowOrigin(`http://127.0.0.1:${web.address().port}`);
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

test('two tabs of one profile on one vault both end up with every note', async () => {
  await allowOrigin(`http://127.0.0.1:${web.address().port}`);
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
