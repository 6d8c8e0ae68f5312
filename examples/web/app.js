// A notes page on bucketsync: each browser profile is a device; its state lives in IndexedDB.
import { Vault, VaultKey, indexedDbStorage } from '../../bindings-wasm/js/index.js';

const $ = (id) => document.getElementById(id);
let vault;

function show() {
  const list = $('notes');
  list.replaceChildren(
    ...vault.keyStrings('note/').map((k) => {
      const li = document.createElement('li');
      li.textContent = vault.getString(k);
      return li;
    }),
  );
}

function status(text) {
  $('status').textContent = text;
}

$('connect').addEventListener('click', async () => {
  try {
    const code = $('code').value.trim();
    const key = code ? await VaultKey.fromRecoveryCode(code) : await VaultKey.generate();
    $('code').value = key.recoveryCode();
    vault = await Vault.open({
      store: $('store').value.trim(),
      key,
      storage: indexedDbStorage(`bucketsync-notes-${key.vaultId}`),
      credentials: { accessKeyId: $('access-key').value, secretAccessKey: $('secret-key').value },
    });
    show();
    status(`Connected as device ${vault.device}.`);
  } catch (e) {
    status(`${e.category ?? 'error'}: ${e.message}`);
  }
});

$('add').addEventListener('submit', (event) => {
  event.preventDefault();
  const text = $('note').value.trim();
  if (!vault || !text) return;
  vault.put(`note/${Date.now()}-${vault.device.slice(0, 8)}`, text);
  $('note').value = '';
  show();
  status(`${vault.unpushed} change(s) to sync.`);
});

$('sync').addEventListener('click', async () => {
  if (!vault) return;
  status('Syncing…');
  try {
    const report = await vault.sync();
    show();
    status(`Synced: pushed ${report.pushed}, pulled ${report.pulled}, ${report.requests} request(s).`);
  } catch (e) {
    status(`${e.category ?? 'error'}: ${e.message}`);
  }
});
