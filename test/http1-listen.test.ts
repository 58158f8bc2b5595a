// Listener binding modes (src/listeners.ts listen): SO_REUSEPORT where the platform has it, so
// several servers (workers) bind the same port and the kernel balances between them; the
// cluster round-robin fallback binds an ordinary socket.

import { execFileSync } from 'node:child_process';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { listen } from '../src/listeners.ts';

const servers: net.Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

function server(): net.Server {
  const s = net.createServer((c) => c.end('hi'));
  servers.push(s);
  return s;
}

describe.runIf(process.platform === 'linux')('listen', () => {
  it('binds with SO_REUSEPORT: two servers share a port, and both serve', async () => {
    const a = server();
    expect(await listen(a, 0, '127.0.0.1', 'reuseport')).toBe('reuseport');
    const port = (a.address() as net.AddressInfo).port;
    const b = server();
    expect(await listen(b, port, '127.0.0.1', 'reuseport')).toBe('reuseport');
    // One closes (a worker exits): the other keeps accepting on the port.
    await new Promise<void>((r) => a.close(() => r()));
    const reply = await new Promise<string>((resolve, reject) => {
      const c = net.connect(port, '127.0.0.1');
      let data = '';
      c.on('data', (d) => (data += d));
      c.on('end', () => resolve(data));
      c.on('error', reject);
    });
    expect(reply).toBe('hi');
    // And a new one (the restarted worker) binds again.
    expect(await listen(server(), port, '127.0.0.1', 'reuseport')).toBe('reuseport');
  });

  it('accepted sockets have TCP_NODELAY from the listening socket, with no setsockopt per connection', async () => {
    const accepted: net.Socket[] = [];
    const a = net.createServer({ noDelay: true }, (c) => accepted.push(c));
    servers.push(a);
    expect(await listen(a, 0, '127.0.0.1', 'reuseport')).toBe('reuseport');
    // Set once on the listening socket: node:net no longer sets it on each connection.
    expect((a as unknown as { noDelay: boolean }).noDelay).toBe(false);
    const c = net.connect((a.address() as net.AddressInfo).port, '127.0.0.1');
    c.on('error', () => undefined);
    await new Promise<void>((r) => a.once('connection', () => setImmediate(r)));
    // node has no getsockopt: ask the kernel through a copy of the accepted socket's descriptor.
    const fd = (accepted[0] as unknown as { _handle: { fd: number } })._handle.fd;
    const py = `import ctypes,socket\nlibc=ctypes.CDLL(None)\npfd=libc.syscall(434,${process.pid},0)\nfd=libc.syscall(438,pfd,${fd},0)\nprint(socket.socket(fileno=fd).getsockopt(socket.IPPROTO_TCP,socket.TCP_NODELAY))`;
    let out: string;
    try {
      out = execFileSync('python3', ['-c', py], { encoding: 'utf8', timeout: 5000 }).trim();
    } catch {
      return; // no python3, or no pidfd_getfd (Linux < 5.6): nothing to ask the kernel with
    }
    c.destroy();
    expect(out).not.toBe('0');
  });

  it('the round-robin fallback binds an ordinary socket (a second bind on the port fails)', async () => {
    const a = server();
    expect(await listen(a, 0, '127.0.0.1', 'round-robin')).toBe('round-robin');
    const port = (a.address() as net.AddressInfo).port;
    await expect(listen(server(), port, '127.0.0.1', 'round-robin')).rejects.toMatchObject({ code: 'EADDRINUSE' });
  });
});
