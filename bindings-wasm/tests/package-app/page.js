// The page's bundle (esbuild): the wasm comes through the package's `bucketsync/wasm` export
// and esbuild's file loader, since esbuild leaves `new URL('…', import.meta.url)` alone.
import * as bucketsync from 'bucketsync';
import wasmUrl from 'bucketsync/wasm';
import { readAndWrite } from './sync.js';

window.readAndWrite = async (options) => {
  await bucketsync.init(wasmUrl);
  return readAndWrite(bucketsync, options);
};
