// One task at a time through tinypool with `runtime: 'child_process'` (a worker process
// per thread, as our process pool): `node tinypool_rt.js N` prints {"value": microseconds
// per task}.
const path = require('path');

if (process.argv[2] !== undefined && !process.env.TINYPOOL_WORKER_ID) {
  (async () => {
    const { Tinypool } = await import(path.join(__dirname, 'node_modules', 'tinypool', 'dist', 'index.js'));
    const n = Number(process.argv[2]);
    const pool = new Tinypool({
      filename: __filename,
      runtime: 'child_process',
      minThreads: 1,
      maxThreads: 1,
    });
    await pool.run(0); // the process is started
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
