// The Node chapter's "Hello, World" server using cluster, with the worker count from argv
// (`node cluster_http.js 2`; 0 = no cluster, one process) and the port from PORT.
const http = require('http');
const cluster = require('cluster');
const workers = Number(process.argv[2] ?? 2);
const port = Number(process.env.PORT ?? 3000);
const serve = () => http.createServer((req, res) => {
  res.end('Hello, World!\n');
}).listen(port, '127.0.0.1', () => console.log('listening'));
if (workers === 0) {
  serve();
} else if (cluster.isPrimary) {
  for (let i = 0; i < workers; i++) cluster.fork();
} else {
  serve();
}
