// One-way throughput: main posts N small messages, the worker counts them and answers once.
// `node one_way.js N` prints {"value": million messages per second}.
const { Worker, isMainThread, parentPort, workerData } = require('worker_threads');

if (isMainThread) {
  const n = Number(process.argv[2]);
  const worker = new Worker(__filename, { workerData: { n } });
  worker.once('message', (ready) => {
    const start = process.hrtime.bigint();
    worker.once('message', (count) => {
      const secs = Number(process.hrtime.bigint() - start) / 1e9;
      if (count !== n) throw new Error(`lost messages: ${count}`);
      console.log(JSON.stringify({ value: n / secs / 1e6 }));
      worker.terminate();
    });
    for (let i = 0; i < n; i++) worker.postMessage(i);
  });
} else {
  let count = 0;
  parentPort.on('message', () => {
    count += 1;
    if (count === workerData.n) parentPort.postMessage(count);
  });
  parentPort.postMessage('ready');
}
