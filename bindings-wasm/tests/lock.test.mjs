// One lock protocol for a state file: a Node process and a native process (Python) opening the
// same state exclude each other, whichever holds it first, and a lock left by a killed holder
// is taken over.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

import * as bucketsync from '../js/index.js';
import { Vault, VaultKey, fileStorage } from '../js/index.js';

const dir = mkdtempSync(join(tmpdir(), 'bucketsync-lock-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** The Python that scripts/test.sh installed the package into. */
const python = process.env.BUCKETSYNC_PYTHON
  ?? join(process.env.BUCKETSYNC_CACHE ?? join(homedir(), '.cache/bucketsync'), 'pyvenv/bin/python');

// Opens the state (argv: store, recovery code, state path), says "opened" and lets go, or says
// "locked" and the message; with "hold", says "held" and keeps it until stdin closes.
const script = `
import sys, bucketsync
store, code, state, hold = sys.argv[1:5]
try:
    v = bucketsync.Vault.open(store, bucketsync.VaultKey.from_recovery_code(code), state=state, mode="join-or-create")
except bucketsync.LockedError as e:
    print("locked", e, flush=True)
    sys.exit(0)
if hold == "hold":
    print("held", flush=True)
    sys.stdin.read()
else:
    print("opened", flush=True)
v.close()
`;

test('a Node process and a Python process exclude each other from one state', async () => {
  assert.ok(existsSync(python), `no Python with the package at ${python} (scripts/test.sh installs it)`);
  const key = await VaultKey.generate();
  const store = `file://${join(dir, 'bucket')}`;
  const state = join(dir, 'device.state');
  const args = (hold) => ['-c', script, store, key.recoveryCode(), state, hold];
  const python1 = () => execFileSync(python, args('once'), { encoding: 'utf8' }).trim();

  // Node holds it: Python is refused, and told who holds it.
  const node = await Vault.create({ store, key, storage: fileStorage(state) });
  assert.match(python1(), new RegExp(`^locked .*process ${process.pid} on host`));
  await node.close();
  assert.equal(python1(), 'opened');

  // Python holds it: Node is refused, and told who holds it.
  const holder = spawn(python, args('hold'), { stdio: ['pipe', 'pipe', 'inherit'] });
  const [line] = await once(createInterface({ input: holder.stdout }), 'line');
  assert.equal(line, 'held');
  await assert.rejects(Vault.open({ store, key, storage: fileStorage(state) }),
    (e) => e instanceof bucketsync.LockedError && new RegExp(`process ${holder.pid} on host`).test(e.message));
  // Killed while holding it: its lock is taken over, by Node and then by Python.
  holder.kill('SIGKILL');
  await once(holder, 'exit');
  assert.match(readFileSync(`${state}.lock`, 'utf8'), new RegExp(`process ${holder.pid} `), 'the killed holder left its lock');
  const again = await Vault.open({ store, key, storage: fileStorage(state) });
  await again.put('after', 'the takeover');
  await again.close();
  assert.ok(!existsSync(`${state}.lock`), 'Node let go of it');
  assert.equal(python1(), 'opened');
});
