// The npm package as an app gets it: `npm pack` of bindings-wasm/js, installed offline into a
// fresh project (a temp dir with its own package.json), then used from there (1) by Node, (2)
// bundled with esbuild into a page in headless Chromium and (3) in module Web Workers (the
// bundle, and the package's own ESM unbundled). Each context reads a record this process wrote
// and writes one that this process reads back through SeaweedFS. The app's sources are in
// package-app/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import { cp, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { Vault, VaultKey } from '../js/index.js';
import { allowOrigin, launchChromium, npmCache, root, startServer } from './helpers.mjs';

const run = promisify(execFile);
const esbuild = createRequire(import.meta.url)(join(npmCache, 'node_modules/esbuild'));

const SHIPPED = ['LICENSE-APACHE', 'LICENSE-MIT', 'README.md', 'index.d.ts', 'index.js', 'package.json',
  'pkg/bucketsync_wasm.js', 'pkg/bucketsync_wasm_bg.wasm', 'wasm.d.ts'];

let s3, app, packed, web, origin, browser, bundled;
const served = [];
before(async () => {
  s3 = await startServer('npm-package');
  app = await mkdtemp(join(tmpdir(), 'bucketsync-app-'));
  await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'fresh-app', private: true, type: 'module' }));
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', app], { cwd: join(root, 'bindings-wasm/js') });
  [packed] = JSON.parse(stdout);
  // Offline: the tarball has no dependencies, so nothing may come from a registry.
  await run('npm', ['install', '--offline', '--no-audit', '--no-fund', join(app, packed.filename)], { cwd: app });
  await cp(fileURLToPath(new URL('package-app/', import.meta.url)), join(app, 'src'), { recursive: true });
  bundled = await esbuild.build({
    absWorkingDir: app,
    entryPoints: ['src/page.js', 'src/worker.js', 'src/no-wasm.js'],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    outdir: 'dist',
    loader: { '.wasm': 'file' },
    metafile: true,
    logLevel: 'silent',
  });
  for (const name of ['page', 'no-wasm']) {
    await writeFile(join(app, `dist/${name}.html`),
      `<!doctype html><meta charset="utf-8"><script type="module" src="./${name}.js"></script>`);
  }
  web = await serveDir(app);
  origin = `http://127.0.0.1:${web.address().port}`;
  await allowOrigin(s3, 'npm-package', origin);
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  web?.close();
  await s3?.stop();
  if (app) await rm(app, { recursive: true, force: true });
});

/** A static server for the app's folder on 127.0.0.1 (Chromium lets such a page reach the loopback S3). */
function serveDir(dir) {
  const types = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm' };
  const server = createServer(async (req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url, 'http://x').pathname));
    served.push(path);
    try {
      const body = await readFile(join(dir, path));
      res.writeHead(200, { 'content-type': types[extname(path)] ?? 'application/octet-stream' }).end(body);
    } catch {
      res.writeHead(404).end('not found');
    }
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

/** A vault this process creates (with the repository's index.js), holding `from/test`. */
async function testVault(prefix) {
  const key = await VaultKey.generate();
  const store = s3.store('npm-package', prefix);
  const vault = await Vault.create({ store, key, device: 'the test', credentials: s3.credentials });
  await vault.put('from/test', 'written by the test');
  assert.equal((await vault.sync()).pushed, 1);
  return { vault, store, code: key.recoveryCode() };
}

/** What another context wrote, as this process's vault reads it after a sync. */
async function readBack(vault, key) {
  await vault.sync();
  return vault.getString(key);
}

test('npm pack gives a tarball of the package\'s files that installs offline into a fresh project', async (t) => {
  assert.deepEqual(packed.files.map((f) => f.path).sort(), SHIPPED);
  t.diagnostic(`${packed.filename}: ${packed.size} bytes packed, ${packed.unpackedSize} unpacked`);
  const installed = join(app, 'node_modules/bucketsync');
  const manifest = JSON.parse(await readFile(join(installed, 'package.json'), 'utf8'));
  assert.equal(manifest.version, packed.version);
  const files = (await readdir(installed, { recursive: true, withFileTypes: true }))
    .filter((e) => e.isFile()).map((e) => join(e.parentPath ?? e.path, e.name).slice(installed.length + 1)).sort();
  assert.deepEqual(files, SHIPPED);
  const wasm = (p) => readFile(p).then((b) => createHash('sha256').update(b).digest('hex'));
  assert.equal(await wasm(join(installed, 'pkg/bucketsync_wasm_bg.wasm')),
    await wasm(join(root, 'bindings-wasm/js/pkg/bucketsync_wasm_bg.wasm')), 'the tarball holds the built wasm');
  // TypeScript in the fresh project finds the types through `exports` (index.d.ts itself is
  // checked by types-check.ts in scripts/test.sh: skipLibCheck keeps this one fast).
  await writeFile(join(app, 'src/check.ts'), [
    "import { init, Vault, VaultKey, type SyncReport } from 'bucketsync';",
    "import wasmUrl from 'bucketsync/wasm';",
    'const where: string = wasmUrl;',
    'await init(new URL(where, import.meta.url));',
    'const key: VaultKey = await VaultKey.generate();',
    "const vault: Vault = await Vault.open({ store: 's3://b/p', key });",
    'const report: SyncReport = await vault.sync();',
    '// @ts-expect-error: a key is a string or bytes',
    'vault.put(1, 2);',
    'export { report };',
  ].join('\n'));
  await run(join(npmCache, 'node_modules/.bin/tsc'), ['--strict', '--noEmit', '--skipLibCheck', '--target', 'es2022', '--module',
    'nodenext', '--moduleResolution', 'nodenext', 'src/check.ts'], { cwd: app }).catch((e) => {
    assert.fail(`tsc in the fresh project: ${e.stdout}${e.stderr}`);
  });
});

test('in Node, the installed package (ESM) syncs with another vault through S3', async () => {
  const { vault, store, code } = await testVault('node/');
  const state = join(app, 'node.state');
  const { stdout } = await run(process.execPath, [join(app, 'src/node-sync.mjs')], {
    cwd: app,
    env: { ...process.env, STORE: store, CODE: code, STATE: state,
      ACCESS_KEY_ID: s3.accessKeyId, SECRET_ACCESS_KEY: s3.secretAccessKey },
  });
  const seen = JSON.parse(stdout);
  assert.equal(fileURLToPath(seen.resolved), join(app, 'node_modules/bucketsync/index.js'));
  assert.equal(fileURLToPath(seen.wasm), join(app, 'node_modules/bucketsync/pkg/bucketsync_wasm_bg.wasm'));
  assert.equal(seen.read, 'written by the test');
  assert.equal(seen.pushed, 1);
  assert.ok((await readFile(state)).length > 0, 'fileStorage wrote the state');
  assert.equal(await readBack(vault, 'from/node'), 'written by the installed package in Node');
});

test('bundled with esbuild, the package syncs in a Chromium page', async () => {
  assert.deepEqual(bundled.warnings, []);
  const inputs = Object.keys(bundled.metafile.inputs);
  assert.ok(inputs.includes('node_modules/bucketsync/index.js'), `the bundle uses the installed package: ${inputs}`);
  const wasmOut = Object.keys(bundled.metafile.outputs).find((p) => p.endsWith('.wasm'));
  assert.match(wasmOut ?? '', /^dist\/bucketsync_wasm_bg-\w+\.wasm$/);

  const { vault, store, code } = await testVault('page/');
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${origin}/dist/page.html`);
  await page.waitForFunction(() => typeof window.readAndWrite === 'function');
  const seen = await page.evaluate((options) => window.readAndWrite(options), {
    store, code, credentials: s3.credentials, key: 'from/page', value: 'written by the bundled page',
  });
  assert.equal(seen.read, 'written by the test');
  assert.equal(seen.pushed, 1);
  assert.ok(served.includes(`/${wasmOut}`), `the page loaded the wasm esbuild emitted: ${served}`);
  assert.equal(await readBack(vault, 'from/page'), 'written by the bundled page');
  await context.close();
});

test('a bundle that is not told where the wasm went fails with a ConfigError that says how', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${origin}/dist/no-wasm.html`);
  const loaded = await page.evaluate(() => window.loaded);
  assert.match(loaded, /^ConfigError: could not load the WebAssembly module from .*\/dist\/pkg\/bucketsync_wasm_bg\.wasm \(HTTP 404\)/);
  assert.match(loaded, /await init\(wasmUrl\)/);
  await context.close();
});

test('in module Web Workers (bundled, and the package\'s ESM unbundled) a put and a sync reach another vault', async () => {
  const { vault, store, code } = await testVault('worker/');
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${origin}/dist/page.html`);
  const workers = { bundled: '/dist/worker.js', unbundled: '/src/plain-worker.js' };
  const devices = new Set();
  for (const [kind, url] of Object.entries(workers)) {
    const reply = await page.evaluate(([url, options]) => new Promise((resolve) => {
      const worker = new Worker(url, { type: 'module' });
      worker.onmessage = ({ data }) => {
        worker.terminate();
        resolve(data);
      };
      worker.onerror = (e) => resolve({ error: `worker error: ${e.message}` });
      worker.postMessage(options);
    }), [url, { store, code, credentials: s3.credentials, key: `from/${kind}`, value: `written in the ${kind} worker` }]);
    assert.equal(reply.error, undefined, `${kind} worker`);
    assert.equal(reply.result.read, 'written by the test');
    assert.equal(reply.result.pushed, 1);
    devices.add(reply.result.device);
    assert.equal(await readBack(vault, `from/${kind}`), `written in the ${kind} worker`);
  }
  assert.equal(devices.size, 2);
  assert.ok(served.includes('/node_modules/bucketsync/pkg/bucketsync_wasm_bg.wasm'),
    'the unbundled worker found the wasm beside the package\'s index.js');
  await context.close();
});
