// A 64 MiB buffer to a worker and back: `node buffer.js transfer|clone REPS` prints
// {"value": milliseconds per round trip}.
const { Worker, isMainThread, parentPort, workerData } = require('worker_threads');
const SIZE = 64 * 1024 * 1024;

if (isMainThread) {
  const [mode, reps] = [process.argv[2], Number(process.argv[3])];
  const worker = new Worker(__filename, { workerData: { mode } });
  let buf = new ArrayBuffer(SIZE);
  new Uint8Array(buf).fill(7);
  let done = 0;
  let start;
  const send = () => {
    if (mode === 'transfer') worker.postMessage(buf, [buf]);
    else worker.postMessage(buf);
  };
  worker.on('message', (back) => {
    if (back.byteLength !== SIZE) throw new Error('wrong size');
    buf = back;
    done += 1;
    if (done === 1) start = process.hrtime.bigint();
    if (done <= reps) { send(); return; }
    const ms = Number(process.hrtime.bigint() - start) / 1e6 / reps;
    console.log(JSON.stringify({ value: ms }));
    worker.terminate();
  });
  send();
} else {
  parentPort.on('message', (buf) => {
    if (workerData.mode === 'transfer') parentPort.postMessage(buf, [buf]);
    else parentPort.postMessage(buf);
  });
}
