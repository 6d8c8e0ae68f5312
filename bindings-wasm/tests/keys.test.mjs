// Where a home's keys go: a shared vault on another service (a second S3 server accepting only
// its own key, behind a tap that keeps every byte sent to it), accepted by a home whose keys
// are in its connection. The other server must never see the home's key id; with the vault's
// own credentials passed, the accept works and reads.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import * as bucketsync from '../js/index.js';
import { Vault, VaultKey } from '../js/index.js';
import { startServer, startOtherService } from './helpers.mjs';

const dir = mkdtempSync(join(tmpdir(), 'bucketsync-keys-'));
const tap = join(dir, 'tap.log');
const theirs = { accessKeyId: 'other-service-key', secretAccessKey: 'other-service-secret-0123456789' };
let homes;
let other;
before(async () => {
  homes = await startServer('keys');
  other = await startOtherService(theirs.accessKeyId, theirs.secretAccessKey, tap, 'trips');
});
after(async () => {
  await homes?.stop();
  await other?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Whether `text` reached the other service. */
const seen = (text) => existsSync(tap) && readFileSync(tap).includes(text);

test("a home's keys never reach a store an invitation names on another service", async () => {
  const trips = `s3://trips/v/?endpoint=${other.endpoint}&path_style=true`;
  const alice = await Vault.create({ store: homes.store('keys', 'alice/'), key: await VaultKey.generate(),
    credentials: homes.credentials });
  const trip = await alice.createShared(trips, 'trip', { credentials: theirs });
  await trip.put('hotel', 'by the lake');
  assert.deepEqual((await trip.sync()).errors, []);
  const bob = await Vault.create({ store: homes.store('keys', 'bob/'), key: await VaultKey.generate(),
    credentials: homes.credentials });
  const invitation = await trip.share(bob.identity().public);
  assert.ok(seen(theirs.accessKeyId) && !seen(homes.accessKeyId));

  // The home's keys are in its connection: the grant's GET goes unsigned, and says why.
  await assert.rejects(bob.accept(invitation),
    (e) => e instanceof bucketsync.AuthError && /pass this vault's own credentials/.test(e.message));
  assert.ok(!seen(homes.accessKeyId), "the home's key id reached the other service");

  // With the vault's own credentials, it is accepted and read.
  const accepted = await bob.accept(invitation, { credentials: theirs });
  assert.deepEqual((await accepted.sync()).errors, []);
  assert.equal(accepted.getString('hotel'), 'by the lake');
  await accepted.close();
  // Opened again through the home with nothing given, it goes unsigned, and says why.
  const again = await bob.openShared('trip');
  await assert.rejects(again.sync(),
    (e) => e instanceof bucketsync.AuthError && /pass this vault's own credentials/.test(e.message));
  assert.ok(!seen(homes.accessKeyId), "the home's key id reached the other service");
  for (const vault of [again, bob, trip, alice]) await vault.close();
});
