// One task at a time through piscina (worker threads, one of them): `node piscina_rt.js
// piscina4|piscina5 N` prints {"value": microseconds per task}. The same program as
// tinypool_rt.js and our rt_process_pool, with piscina's threads in place of processes.
const path = require('path');
const Piscina = require(path.join(__dirname, 'node_modules', process.argv[2] || 'piscina4'));

if (!Piscina.isWorkerThread) {
  (async () => {
    const n = Number(process.argv[3]);
    const pool = new Piscina({ filename: __filename, minThreads: 1, maxThreads: 1 });
    await pool.run(0); // the thread is started
    const start = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      const root = await pool.run(i);
      if (root !== Math.sqrt(i)) throw new Error('wrong root');
    }
    const us = Number(process.hrtime.bigint() - start) / 1000 / n;
    console.log(JSON.stringify({ value: us }));
    await pool.destroy();
  })();
}

module.exports = (i) => Math.sqrt(i);
