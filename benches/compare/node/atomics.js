// Atomics.wait / Atomics.notify ping-pong between main and a worker on a shared Int32Array:
// `node atomics.js N` prints {"value": microseconds per round trip}.
const { Worker, isMainThread, workerData } = require('worker_threads');

function play(turn, rounds, parity) {
  for (let round = 0; round < rounds; round++) {
    const mine = 2 * round + parity;
    for (;;) {
      const now = Atomics.load(turn, 0);
      if (now === mine) break;
      Atomics.wait(turn, 0, now);
    }
    Atomics.store(turn, 0, mine + 1);
    Atomics.notify(turn, 0, 1);
  }
}

if (isMainThread) {
  const n = Number(process.argv[2]);
  const sab = new SharedArrayBuffer(4);
  const turn = new Int32Array(sab);
  const worker = new Worker(__filename, { workerData: { sab, n } });
  worker.once('online', () => {
    const start = process.hrtime.bigint();
    play(turn, n, 0);
    // The worker's last store: one load per check (a second load could see it arrive
    // after the first, then wait on it with no notify to come).
    for (;;) {
      const now = Atomics.load(turn, 0);
      if (now === 2 * n) break;
      Atomics.wait(turn, 0, now);
    }
    const us = Number(process.hrtime.bigint() - start) / 1000 / n;
    console.log(JSON.stringify({ value: us }));
    worker.terminate();
  });
} else {
  play(new Int32Array(workerData.sab), workerData.n, 1);
}
