// The Node chapter's "ten million square roots with piscina, without crashing", as written, with
// the piscina version given: `node sqrt_piscina.js piscina4|piscina5 N` prints
// {"value": million tasks per second, "completed": tasks that resolved}. Under piscina 5 the Node chapter's
// loop waits for a 'drain' that never comes and Node exits early (their issue #868): the
// `exit` handler reports how many tasks completed.
const path = require('path');
const assert = require('assert');
const { once } = require('events');
const Piscina = require(path.join(__dirname, 'node_modules', process.argv[2] || 'piscina4'));

if (!Piscina.isWorkerThread) {
  const n = Number(process.argv[3]);
  const piscina = new Piscina({ filename: __filename, maxQueue: 'auto' });
  let completed = 0;
  const start = process.hrtime.bigint();
  let reported = false;
  const report = () => {
    if (reported) return;
    reported = true;
    const secs = Number(process.hrtime.bigint() - start) / 1e9;
    console.log(JSON.stringify({ value: completed / secs / 1e6, completed }));
  };
  process.on('exit', report);
  (async () => {
    for (let i = 0; i < n; i++) {
      if (piscina.queueSize === piscina.options.maxQueue) {
        await once(piscina, 'drain');
      }
      piscina.run(i).then((squareRootOfI) => {
        assert.ok(typeof squareRootOfI === 'number');
        completed += 1;
        if (completed === n) { report(); piscina.destroy(); }
      });
    }
  })();
}

module.exports = (num) => Math.sqrt(num);
