// Starts and stops corelay N times the way the browser tests do, and reports every
// start whose shard did not come up within 5 s (with a dump of each thread's kernel
// stack). Not a test: a measurement for start-up hangs, best run beside a browser
// test loop for load.
//
//   CORELAY_BIN=target/debug/corelay node tests/interop/browser/start_stress.mjs 300
import { execSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';

import { startCorelay } from './corelay.mjs';

const THREADS = (pid) =>
  `for t in /proc/${pid}/task/*; do ` +
  `echo "-- $(cat $t/comm) wchan=$(cat $t/wchan) state=$(cut -d' ' -f3 $t/stat) utime=$(cut -d' ' -f14 $t/stat)"; ` +
  `cat $t/stack 2>/dev/null | head -4; done`;

const n = Number(process.argv[2] || 100);
let stuck = 0;
for (let i = 0; i < n; i++) {
  const server = await startCorelay();
  let up = false;
  for (let t = 0; t < 50 && !up; t++) {
    await sleep(100);
    up = /shard started/.test(server.fullLog());
  }
  if (!up) {
    stuck++;
    console.log(`start ${i}: no shard after 5 s (pid ${server.process.pid})\n${server.fullLog()}`);
    console.log(execSync(THREADS(server.process.pid)).toString());
  }
  await server.stop();
}
console.log(`${stuck} of ${n} starts stuck`);
