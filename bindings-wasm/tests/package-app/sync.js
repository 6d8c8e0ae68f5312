// What the page and the workers do with the package they were handed (bundled or not): open
// the test's vault, read the test's record, write `key`, sync.
export async function readAndWrite(bucketsync, { store, code, credentials, key, value, storage }) {
  const vault = await bucketsync.Vault.open({
    store, key: await bucketsync.VaultKey.fromRecoveryCode(code), credentials, storage,
  });
  const { pulled } = await vault.sync();
  const read = vault.getString('from/test');
  await vault.put(key, value);
  const { pushed } = await vault.sync();
  const device = vault.device;
  await vault.close();
  return { pulled, read, pushed, device };
}

/** A worker's side: one message in (the options), one back ({ result } or { error }). */
export function serveWorker(bucketsync, wasm) {
  self.onmessage = async ({ data }) => {
    try {
      await bucketsync.init(wasm);
      const storage = bucketsync.indexedDbStorage(`worker-${data.key}`);
      self.postMessage({ result: await readAndWrite(bucketsync, { ...data, storage }) });
    } catch (e) {
      self.postMessage({ error: `${e?.name}: ${e?.message}` });
    }
  };
}
