// A module worker that loads the installed package's own ESM, unbundled: the wasm is found
// beside index.js (workers have no import maps, hence the path).
import * as bucketsync from '../node_modules/bucketsync/index.js';
import { serveWorker } from './sync.js';

serveWorker(bucketsync);
