// Sharing notes with another person: each browser profile is a person, whose home vault (its
// state in IndexedDB) holds their identity and the keys of the vaults they made or accepted.
// One person makes a vault and shares it with the public identity the other shows; the
// invitation carries no key (the grant it points at is sealed to the recipient), and the
// recipient checks who it comes from by the fingerprint told out of band. Every shared vault's
// replica has a state of its own in IndexedDB. An owner can revoke a member: from then on
// nothing written or stored is readable to them.
import { Vault, VaultKey, indexedDbStorage } from '../../bindings-wasm/js/index.js';

const $ = (id) => document.getElementById(id);
let home;
let homeId;
let vault;
/** The label of the vault open (`vault`). */
let shown;

function status(text) {
  $('status').textContent = text;
}

/** Runs an action of a button, showing its error (with its category) instead of throwing. */
function action(id, run) {
  $(id).addEventListener('click', async (event) => {
    event.preventDefault();
    try {
      await run();
    } catch (e) {
      status(`${e.category ?? 'error'}: ${e.message}`);
    }
  });
}

function needHome() {
  if (!home) throw Object.assign(new Error('open your home first'), { category: 'config' });
}

function needVault() {
  if (!vault) throw Object.assign(new Error('open or create a vault first'), { category: 'config' });
}

/** Where this profile keeps its replica of the home's shared vault `label`. */
function storageOf(label) {
  return indexedDbStorage(`bucketsync-shared-${homeId}-${label}`);
}

function showVaults(selected) {
  $('vaults').replaceChildren(
    ...home.shared().map((s) => {
      const option = document.createElement('option');
      option.value = s.label;
      option.textContent = `${s.label} (${s.role}${s.grantedBy ? `, from ${s.grantedBy}` : ''})`;
      option.selected = s.label === selected;
      return option;
    }),
  );
}

function showVault(label) {
  $('vault-name').textContent = label;
  $('notes').replaceChildren(
    ...vault.keyStrings('note/').map((k) => {
      const li = document.createElement('li');
      li.textContent = vault.getString(k);
      return li;
    }),
  );
  $('members').replaceChildren(
    ...vault.members().map((m) => {
      const li = document.createElement('li');
      li.textContent = `${m.fingerprint}: ${m.role}`;
      return li;
    }),
  );
}

/** Makes `label` the vault shown, reading what the others wrote. */
async function openVault(label) {
  await vault?.close();
  vault = undefined;
  // ANCHOR: open_shared
  vault = await home.openShared(label, { storage: storageOf(label) });
  // ANCHOR_END: open_shared
  shown = label;
  const report = await vault.sync();
  showVault(label);
  return report;
}

action('open-home', async () => {
  const code = $('code').value.trim();
  const key = code ? await VaultKey.fromRecoveryCode(code) : await VaultKey.generate();
  $('code').value = key.recoveryCode();
  homeId = key.vaultId;
  await vault?.close();
  await home?.close();
  vault = undefined;
  home = await Vault.open({
    store: $('store').value.trim(),
    key,
    // No code typed: a new home. Otherwise this profile becomes another device of it.
    mode: code ? 'join' : 'create',
    credentials: { accessKeyId: $('access-key').value, secretAccessKey: $('secret-key').value },
    storage: indexedDbStorage(`bucketsync-home-${homeId}`),
  });
  // Creates the home in the bucket, or learns of the vaults its other devices made.
  await home.sync();
  // ANCHOR: identity
  const identity = home.identity();
  $('fingerprint').textContent = identity.fingerprint;
  $('public').value = identity.public;
  // ANCHOR_END: identity
  showVaults();
  status('Home open.');
});

action('create', async () => {
  needHome();
  const label = $('label').value.trim();
  await vault?.close();
  vault = undefined;
  // In the home's store; the home keeps its key, so every device of this person has it.
  // ANCHOR: create
  vault = await home.createShared($('store').value.trim(), label, { storage: storageOf(label) });
  // ANCHOR_END: create
  shown = label;
  await vault.sync();
  await home.sync();
  showVaults(label);
  showVault(label);
  status(`Created "${label}".`);
});

action('share', async () => {
  needVault();
  // ANCHOR: share
  const invitation = await vault.share($('recipient').value.trim(), { role: $('role').value });
  // ANCHOR_END: share
  $('invitation').value = invitation;
  status(`Invitation ready: send it to them.`);
});

action('accept', async () => {
  needHome();
  const before = new Set(home.shared().map((s) => s.label));
  // ANCHOR: accept
  const grantedBy = $('from').value.trim() || undefined;
  const accepted = await home.accept($('incoming').value.trim(), { grantedBy });
  // ANCHOR_END: accept
  await accepted.close();
  // The home now keeps the vault (as a new label if it had the name already): open it with
  // a state of its own, and tell the home's other devices.
  const info = home.shared().find((s) => !before.has(s.label));
  await home.sync();
  showVaults(info.label);
  await openVault(info.label);
  status(`Accepted "${info.label}" (${info.role}) from ${info.grantedBy}.`);
});

action('open-vault', async () => {
  needHome();
  const label = $('vaults').value;
  if (!label) throw Object.assign(new Error('this home has no shared vault yet'), { category: 'config' });
  const report = await openVault(label);
  status(`Synced: pushed ${report.pushed}, pulled ${report.pulled}.`);
});

$('add').addEventListener('submit', async (event) => {
  event.preventDefault();
  const text = $('note').value.trim();
  if (!vault || !text) return;
  try {
    await vault.put(`note/${Date.now()}-${vault.device.slice(0, 8)}`, text);
    $('note').value = '';
    showVault(shown);
    status(`${vault.unpushed} change(s) to sync.`);
  } catch (e) {
    // A member with the role read cannot write: AccessError.
    status(`${e.category ?? 'error'}: ${e.message}`);
  }
});

action('sync', async () => {
  needVault();
  status('Syncing…');
  const report = await vault.sync();
  showVault(shown);
  // Writes of people who may not write (or were revoked) are left out, with the reason.
  const refused = report.errors?.length ? `, ${report.errors.length} object(s) refused` : '';
  status(`Synced: pushed ${report.pushed}, pulled ${report.pulled}${refused}.`);
});

action('revoke', async () => {
  needVault();
  // ANCHOR: revoke
  const was = vault.revoke($('revoke-who').value.trim());
  // The sync seals a new key to everyone left, then publishes the revocation.
  await vault.sync();
  // ANCHOR_END: revoke
  showVault(shown);
  status(`Revoked ${was.fingerprint} (was ${was.role}).`);
});
