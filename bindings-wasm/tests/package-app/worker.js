// A module worker's bundle (esbuild), the wasm as in page.js.
import * as bucketsync from 'bucketsync';
import wasmUrl from 'bucketsync/wasm';
import { serveWorker } from './sync.js';

serveWorker(bucketsync, wasmUrl);
