// Runs in a fresh project that installed the packed tarball (package.test.mjs copies it there):
// opens the vault the test created, reads the test's record, writes one of its own and prints
// what it saw as JSON.
import { Vault, VaultKey, fileStorage } from 'bucketsync';

const { STORE, CODE, ACCESS_KEY_ID, SECRET_ACCESS_KEY, STATE } = process.env;
const vault = await Vault.open({
  store: STORE,
  key: await VaultKey.fromRecoveryCode(CODE),
  storage: fileStorage(STATE),
  credentials: { accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET_ACCESS_KEY },
});
const { pulled } = await vault.sync();
const read = vault.getString('from/test');
await vault.put('from/node', 'written by the installed package in Node');
const { pushed } = await vault.sync();
await vault.close();
console.log(JSON.stringify({
  resolved: import.meta.resolve('bucketsync'), wasm: import.meta.resolve('bucketsync/wasm'), pulled, read, pushed,
}));
