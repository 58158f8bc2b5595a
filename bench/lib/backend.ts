// Fallback benchmark backend, used only when nginx is unavailable (then there is no nginx proxy to
// compare with either): a Node HTTP server answering every request with "ok".
//   node bench/lib/backend.ts PORT
import http from 'node:http';

const port = Number(process.argv[2]);
const body = Buffer.from('ok');
const server = http.createServer((req, res) => {
  req.resume();
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
  res.end(body);
});
server.keepAliveTimeout = 65_000;
server.listen(port, '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
