// An async pool: N tasks that each await a 10 ms timer, through piscina with an async
// handler and concurrentTasksPerWorker (2 threads x 64, the default unbounded queue):
// `node async_piscina.js piscina4 N` prints
// {"value": milliseconds for all N}.
const path = require('path');
const Piscina = require(path.join(__dirname, 'node_modules', process.argv[2] || 'piscina4'));

if (!Piscina.isWorkerThread) {
  const n = Number(process.argv[3]);
  const piscina = new Piscina({
    filename: __filename,
    maxThreads: 2,
    concurrentTasksPerWorker: 64,
  });
  (async () => {
    // Warm up the threads, as the Rust side starts its own.
    await Promise.all([piscina.run(0), piscina.run(0)]);
    const start = process.hrtime.bigint();
    const all = [];
    for (let i = 0; i < n; i++) all.push(piscina.run(i));
    const results = await Promise.all(all);
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    if (results.length !== n) throw new Error('lost tasks');
    console.log(JSON.stringify({ value: ms }));
    await piscina.destroy();
  })();
}

module.exports = async (i) => {
  await new Promise((resolve) => setTimeout(resolve, 10));
  return i;
};
