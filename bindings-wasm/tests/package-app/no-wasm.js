// A bundle that never tells the package where esbuild put the wasm: loading fails, and the
// error says how to pass it.
import { VaultKey } from 'bucketsync';

window.loaded = VaultKey.generate().then(() => 'loaded', (e) => `${e.name}: ${e.message}`);
