// A small HTTP backend that answers with what it received, as JSON. The quickstart runs two of
// them; the tests use it as a real upstream.
import http from 'node:http';

export interface EchoBackend {
  readonly server: http.Server;
  readonly port: number;
  close(): Promise<void>;
}

export function startEchoBackend(name: string, host: string, port: number): Promise<EchoBackend> {
  const server = http.createServer((req, res) => {
    let bytes = 0;
    req.on('data', (c: Buffer) => (bytes += c.length));
    req.on('end', () => {
      const body = JSON.stringify({ backend: name, method: req.method, url: req.url, headers: req.headers, bodyBytes: bytes, remote: req.socket.remoteAddress }) + '\n';
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-backend': name });
      res.end(body);
    });
  });
  server.keepAliveTimeout = 65_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const addr = server.address();
      resolve({
        server,
        port: typeof addr === 'object' && addr ? addr.port : port,
        close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
      });
    });
  });
}
