// Test helpers: a real SeaweedFS from the workspace's test-server binary (stopped by closing
// its stdin, which also happens if this process dies), its CORS rule, and headless Chromium.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import { signRequest } from '../js/index.js';

export const root = fileURLToPath(new URL('../../', import.meta.url));

/** Where scripts/test.sh installs the npm tools (playwright-core, esbuild, tsc). */
export const npmCache = process.env.BUCKETSYNC_NPM
  ?? join(process.env.BUCKETSYNC_CACHE ?? join(homedir(), '.cache/bucketsync'), 'npm');

/** Headless Chromium through the cached playwright-core. */
export async function launchChromium() {
  const { chromium } = await import(join(npmCache, 'node_modules/playwright-core/index.mjs'));
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/**
 * Gives `bucket` of the test server `s3` the CORS rule the README documents, for pages of
 * `origin`: GET, PUT, HEAD, POST and DELETE with any header, `ETag` and `Content-Range` exposed.
 */
export async function allowOrigin(s3, bucket, origin) {
  const body = `<CORSConfiguration><CORSRule><AllowedOrigin>${origin}</AllowedOrigin>`
    + '<AllowedMethod>GET</AllowedMethod><AllowedMethod>PUT</AllowedMethod><AllowedMethod>HEAD</AllowedMethod>'
    + '<AllowedMethod>POST</AllowedMethod><AllowedMethod>DELETE</AllowedMethod><AllowedHeader>*</AllowedHeader>'
    + '<ExposeHeader>ETag</ExposeHeader><ExposeHeader>Content-Range</ExposeHeader><MaxAgeSeconds>600</MaxAgeSeconds>'
    + '</CORSRule></CORSConfiguration>';
  const url = `${s3.endpoint}/${bucket}?cors`;
  const headers = await signRequest({
    method: 'PUT',
    url,
    headers: [['content-md5', createHash('md5').update(body).digest('base64')], ['content-type', 'application/xml']],
    body,
    credentials: s3.credentials,
  });
  const response = await fetch(url, { method: 'PUT', headers, body });
  if (response.status !== 200) throw new Error(`PUT ${url}: ${response.status} ${await response.text()}`);
}

export async function startServer(...buckets) {
  return start(['seaweedfs', ...buckets]);
}

/**
 * Another S3 service: s3s-fs accepting only the key `accessKeyId:secret`, behind a tap that
 * appends every byte sent to it to the file `tap` (its endpoint is the tap's).
 */
export async function startOtherService(accessKeyId, secret, tap, ...buckets) {
  return start(['s3s', '--as', `${accessKeyId}:${secret}`, '--tap', tap, ...buckets]);
}

async function start(args) {
  const child = spawn(`${root}target/debug/test-server`, args, {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout });
  const [line] = await once(lines, 'line');
  const info = JSON.parse(line);
  return {
    ...info,
    credentials: { accessKeyId: info.accessKeyId, secretAccessKey: info.secretAccessKey },
    store: (bucket, prefix = '') => `s3://${bucket}/${prefix}?endpoint=${info.endpoint}&path_style=true`,
    async stop() {
      child.stdin.end();
      await once(child, 'exit');
    },
  };
}
