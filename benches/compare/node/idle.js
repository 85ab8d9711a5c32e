// Resident memory per idle worker: `node idle.js N` starts N workers that wait, and prints
// {"value": KiB of RSS per worker}.
const { Worker, isMainThread, parentPort } = require('worker_threads');

if (isMainThread) {
  const n = Number(process.argv[2]);
  const before = process.memoryUsage().rss;
  const workers = [];
  let online = 0;
  for (let i = 0; i < n; i++) {
    const worker = new Worker(__filename);
    worker.once('message', () => {
      online += 1;
      if (online === n) {
        const after = process.memoryUsage().rss;
        console.log(JSON.stringify({ value: (after - before) / 1024 / n }));
        workers.forEach((w) => w.terminate());
      }
    });
    workers.push(worker);
  }
} else {
  parentPort.postMessage('idle');
  parentPort.on('message', () => {});
}
