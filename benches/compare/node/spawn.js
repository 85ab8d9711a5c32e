// Spawn to first message, one worker at a time: `node spawn.js N` prints
// {"value": microseconds per worker}.
const { Worker, isMainThread, parentPort } = require('worker_threads');

if (isMainThread) {
  const n = Number(process.argv[2]);
  let total = 0n;
  const one = (left) => {
    if (left === 0) {
      console.log(JSON.stringify({ value: Number(total) / 1000 / n }));
      return;
    }
    const start = process.hrtime.bigint();
    const worker = new Worker(__filename);
    worker.once('message', () => {
      total += process.hrtime.bigint() - start;
      worker.terminate().then(() => one(left - 1));
    });
  };
  one(n);
} else {
  parentPort.postMessage(1);
}
