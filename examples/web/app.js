// A notes page on bucketsync: each browser profile is a device; its state lives in IndexedDB.
// One tab holds the profile's state (a Web Lock); a second tab of the same profile opens as a
// device of its own, with its own state, so both tabs sync and neither hides the other's notes.
// "Sync in the background" runs vault.startAutoSync: notes from other devices appear without a
// click (every 30 s, or `?interval=SECONDS` in the page's URL), and the page's own notes go out a
// second after they are added; going offline pauses it, coming back syncs at once.
// ANCHOR: import
import { LockedError, Vault, VaultKey, indexedDbStorage } from '../../bindings-wasm/js/index.js';
// ANCHOR_END: import

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

const interval = Number(new URLSearchParams(location.search).get('interval')) || 30;

/** Starts or stops the background sync as the checkbox says. */
function background() {
  if (!vault) return;
  if (!$('auto').checked) {
    vault.stopAutoSync();
    $('live').textContent = '';
    return;
  }
  if (vault.autoSyncing) return;
  // ANCHOR: background
  vault.startAutoSync({
    interval,
    onEvent: (event) => {
      if (event.kind === 'changed' || event.kind === 'conflict') show();
      if (event.kind === 'state') {
        const why = event.category ? ` (${event.category})` : '';
        $('live').textContent = `Background sync: ${event.state}${why}`;
      }
    },
  });
  // ANCHOR_END: background
}
$('auto').addEventListener('change', background);

$('connect').addEventListener('click', async () => {
  try {
    const code = $('code').value.trim();
    // ANCHOR: open
    const key = code ? await VaultKey.fromRecoveryCode(code) : await VaultKey.generate();
    $('code').value = key.recoveryCode();
    const options = {
      store: $('store').value.trim(),
      key,
      // No recovery code typed: a new vault. Otherwise join the existing one (a wrong code or
      // store then fails at the first sync instead of starting an empty vault).
      mode: code ? 'join' : 'create',
      credentials: { accessKeyId: $('access-key').value, secretAccessKey: $('secret-key').value },
    };
    let tab = '';
    try {
      vault = await Vault.open({ ...options, storage: indexedDbStorage(`bucketsync-notes-${key.vaultId}`) });
    } catch (e) {
      if (!(e instanceof LockedError)) throw e;
      // Another tab holds this profile's state: this tab is a device of its own.
      tab = sessionStorage.getItem('bucketsync-tab') ?? crypto.randomUUID();
      sessionStorage.setItem('bucketsync-tab', tab);
      vault = await Vault.open({ ...options, mode: 'join', storage: indexedDbStorage(`bucketsync-notes-${key.vaultId}-${tab}`) });
    }
    // ANCHOR_END: open
    show();
    status(`Connected as device ${vault.device}${tab ? ' (a second tab: a device of its own)' : ''}.`);
    background();
  } catch (e) {
    status(`${e.category ?? 'error'}: ${e.message}`);
  }
});

$('add').addEventListener('submit', async (event) => {
  event.preventDefault();
  const text = $('note').value.trim();
  if (!vault || !text) return;
  await vault.put(`note/${Date.now()}-${vault.device.slice(0, 8)}`, text);
  $('note').value = '';
  show();
  status(`${vault.unpushed} change(s) to sync.`);
});

$('sync').addEventListener('click', async () => {
  if (!vault) return;
  status('Syncing…');
  // ANCHOR: sync
  try {
    const report = await vault.sync();
    show();
    status(`Synced: pushed ${report.pushed}, pulled ${report.pulled}, ${report.requests} request(s).`);
  } catch (e) {
    status(`${e.category ?? 'error'}: ${e.message}`);
  }
  // ANCHOR_END: sync
});
