// Test helpers: a real SeaweedFS from the workspace's test-server binary (stopped by closing
// its stdin, which also happens if this process dies).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const root = fileURLToPath(new URL('../../', import.meta.url));

export async function startServer(...buckets) {
  const child = spawn(`${root}target/debug/test-server`, ['seaweedfs', ...buckets], {
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
