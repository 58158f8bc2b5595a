// Listener binding modes (src/listeners.ts listen): SO_REUSEPORT where the platform has it, so
// several servers (workers) bind the same port and the kernel balances between them; the
// cluster round-robin fallback binds an ordinary socket.

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

  it('the round-robin fallback binds an ordinary socket (a second bind on the port fails)', async () => {
    const a = server();
    expect(await listen(a, 0, '127.0.0.1', 'round-robin')).toBe('round-robin');
    const port = (a.address() as net.AddressInfo).port;
    await expect(listen(server(), port, '127.0.0.1', 'round-robin')).rejects.toMatchObject({ code: 'EADDRINUSE' });
  });
});
