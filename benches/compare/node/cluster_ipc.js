// Round trip of a small message between a cluster primary and its worker, over Node's
// IPC channel: `node cluster_ipc.js N` prints {"value": microseconds per round trip}.
const cluster = require('cluster');

if (cluster.isPrimary) {
  const n = Number(process.argv[2]);
  const worker = cluster.fork();
  let i = 0;
  let start;
  worker.on('message', (v) => {
    if (v !== i) throw new Error(`expected ${i}, got ${v}`);
    i += 1;
    if (i === 1) start = process.hrtime.bigint();
    if (i <= n) { worker.send(i); return; }
    const us = Number(process.hrtime.bigint() - start) / 1000 / n;
    console.log(JSON.stringify({ value: us }));
    worker.kill();
  });
  worker.send(0);
} else {
  process.on('message', (v) => process.send(v));
}
