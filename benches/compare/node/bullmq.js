// BullMQ, the peer of the "past one machine" cases: a Redis server of its own on a free
// loopback port (no persistence), two worker processes, the square root as the job.
//   node bullmq.js run N   jobs added one by one (512 in flight), until all completed:
//                          prints {"value": thousands of jobs per second}
//   node bullmq.js rtt N   one job at a time, add + waitUntilFinished: prints
//                          {"value": median microseconds}
const { spawn, fork } = require('child_process');
const net = require('net');
const path = require('path');
const { Queue, Worker, QueueEvents } = require(path.join(__dirname, 'node_modules', 'bullmq'));

const QUEUE = 'compare';

if (process.argv[2] === 'worker') {
  const connection = { host: '127.0.0.1', port: Number(process.argv[3]) };
  let completed = 0;
  const worker = new Worker(QUEUE, async (job) => Math.sqrt(job.data), {
    connection,
    concurrency: 64,
  });
  worker.on('completed', () => {
    completed += 1;
    if (completed % 100 === 0) process.send({ completed: 100 });
  });
  worker.waitUntilReady().then(() => process.send({ ready: true }));
  // The parent gone (its IPC channel closed): nothing to serve.
  process.on('disconnect', () => process.exit(0));
  process.on('message', async (m) => {
    if (m.flush) {
      process.send({ completed: completed % 100 });
      completed -= completed % 100;
    }
    if (m.stop) {
      await worker.close();
      process.exit(0);
    }
  });
} else {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}

function freePort() {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function main() {
  const mode = process.argv[2];
  const n = Number(process.argv[3]);
  const port = await freePort();
  const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  // The server goes with this process however it ends (the runner may stop it once it
  // has the value).
  process.on('exit', () => redis.kill());
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(1));
  const connection = { host: '127.0.0.1', port };
  const queue = new Queue(QUEUE, { connection });
  await queue.waitUntilReady();
  let done = 0;
  let onDone = () => {};
  const workers = [0, 1].map(() => fork(__filename, ['worker', String(port)]));
  await Promise.all(workers.map((w) => new Promise((resolve) => {
    w.on('message', (m) => {
      if (m.ready) resolve();
      if (m.completed) {
        done += m.completed;
        onDone();
      }
    });
  })));
  let value;
  if (mode === 'run') {
    const allDone = new Promise((resolve) => {
      onDone = () => { if (done >= n) resolve(); };
    });
    const flusher = setInterval(() => workers.forEach((w) => w.send({ flush: true })), 50);
    const start = process.hrtime.bigint();
    let next = 0;
    const adder = async () => {
      while (next < n) {
        const i = next++;
        await queue.add('sqrt', i, { removeOnComplete: true });
      }
    };
    await Promise.all(Array.from({ length: 512 }, adder));
    await allDone;
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    clearInterval(flusher);
    value = n / seconds / 1e3;
  } else {
    const events = new QueueEvents(QUEUE, { connection });
    await events.waitUntilReady();
    const times = [];
    for (let i = 0; i <= n; i++) {
      const start = process.hrtime.bigint();
      const job = await queue.add('sqrt', i);
      const root = await job.waitUntilFinished(events);
      if (i > 0) times.push(Number(process.hrtime.bigint() - start) / 1e3);
      if (root !== Math.sqrt(i)) throw new Error('wrong root');
    }
    times.sort((a, b) => a - b);
    value = times[Math.floor(times.length / 2)];
    await events.close();
  }
  console.log(JSON.stringify({ value }));
  workers.forEach((w) => w.send({ stop: true }));
  await Promise.all(workers.map((w) => new Promise((resolve) => w.on('exit', resolve))));
  await queue.close();
  redis.kill();
}
