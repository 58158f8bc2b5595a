// A plain HTTP client for tests: node:http, so Host and any other header can be set freely.
import http from 'node:http';

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export function request(port: number, path: string, opts: { host?: string; method?: string; headers?: Record<string, string | string[]>; body?: string | Buffer; agent?: http.Agent | false; address?: string; localAddress?: string; timeoutMs?: number } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: opts.address ?? '127.0.0.1',
        port,
        path,
        method: opts.method ?? 'GET',
        headers: { ...(opts.host ? { host: opts.host } : {}), ...(opts.headers ?? {}) },
        agent: opts.agent ?? false,
        localAddress: opts.localAddress,
        timeout: opts.timeoutMs ?? 10_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('client timeout')));
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** Sends raw bytes on a new connection and collects everything until the server closes. */
export async function rawExchange(port: number, data: string | Buffer, opts: { waitMs?: number; localAddress?: string } = {}): Promise<{ text: string; closed: boolean }> {
  const net = await import('node:net');
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1', ...(opts.localAddress ? { localAddress: opts.localAddress } : {}) });
    const chunks: Buffer[] = [];
    let closed = false;
    const timer = setTimeout(() => finish(), opts.waitMs ?? 5000);
    const finish = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed });
    };
    socket.on('data', (c) => chunks.push(c));
    socket.on('close', () => {
      closed = true;
      finish();
    });
    socket.on('error', () => undefined);
    socket.write(data);
  });
}
