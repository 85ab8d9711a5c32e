// Round trip of a small message between the main thread and a worker:
// `node round_trip.js parentport|channel N` prints {"value": microseconds per round trip}.
const { Worker, isMainThread, parentPort, workerData, MessageChannel } = require('worker_threads');

if (isMainThread) {
  const [mode, n] = [process.argv[2], Number(process.argv[3])];
  let port;
  let worker;
  if (mode === 'channel') {
    const { port1, port2 } = new MessageChannel();
    worker = new Worker(__filename, { workerData: { port: port2 }, transferList: [port2] });
    port = port1;
  } else {
    worker = new Worker(__filename, { workerData: {} });
    port = worker;
  }
  let i = 0;
  let start;
  port.on('message', (v) => {
    if (v !== i) throw new Error(`expected ${i}, got ${v}`);
    i += 1;
    if (i === 1) start = process.hrtime.bigint();
    if (i <= n) { port.postMessage(i); return; }
    const us = Number(process.hrtime.bigint() - start) / 1000 / n;
    console.log(JSON.stringify({ value: us }));
    worker.terminate();
    if (port !== worker) port.close();
  });
  port.postMessage(0);
} else {
  const port = workerData.port || parentPort;
  port.on('message', (v) => port.postMessage(v));
}
