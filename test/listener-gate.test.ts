// ListenerGate (src/listeners.ts): the primary's check that a new Gateway listener's socket is
// free before its workers bind it, on loopback sockets.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ListenerGate } from '../src/listeners.ts';
import { freePort, sleep, waitFor } from './helpers/portico.ts';

const open: net.Server[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))));
});

function gate(forgetMs = 10_000) {
  const events: string[] = [];
  const held: string[][] = [];
  const g = new ListenerGate({ bindAddress: '127.0.0.1', forgetMs, onHeld: (keys) => held.push(keys), onFailure: (key, err) => events.push(`${key} ${err?.code ?? 'ok'}`) });
  return { g, events, held };
}

describe('ListenerGate', () => {
  it('holds a new listener until its port is found free, then releases it', async () => {
    const port = await freePort();
    const { g, events, held } = gate();
    expect(g.update([{ key: `:${port}`, address: '', port }])).toEqual([`:${port}`]);
    await waitFor('released', () => held.length > 0, 2000, 10);
    expect(held.at(-1)).toEqual([]);
    expect(events).toEqual([`:${port} ok`]);
    // Already cleared: a later table with it holds nothing.
    expect(g.update([{ key: `:${port}`, address: '', port }])).toEqual([]);
    g.stop();
  });

  it('a port another process holds is reported and probed again until it is free', async () => {
    const port = await freePort();
    const other = net.createServer();
    await new Promise<void>((r) => other.listen({ port, host: '127.0.0.1', reusePort: true }, r));
    const { g, events, held } = gate();
    g.update([{ key: `:${port}`, address: '', port }]);
    await waitFor('reported', () => events.length > 0, 2000, 10);
    expect(events[0]).toBe(`:${port} EADDRINUSE`);
    expect(g.heldKeys()).toEqual([`:${port}`]);
    await new Promise<void>((r) => other.close(() => r()));
    await waitFor('released once free', () => held.at(-1)?.length === 0, 3000, 20);
    expect(events.at(-1)).toBe(`:${port} ok`);
    g.stop();
  });

  it('a held listener that leaves the table is forgotten, its failure cleared', async () => {
    const port = await freePort();
    const other = net.createServer();
    await new Promise<void>((r) => other.listen({ port, host: '127.0.0.1' }, r));
    open.push(other);
    const { g, events } = gate();
    g.update([{ key: `:${port}`, address: '', port }]);
    await waitFor('reported', () => events.length > 0, 2000, 10);
    expect(g.update([])).toEqual([]);
    expect(events.at(-1)).toBe(`:${port} ok`);
    g.stop();
  });

  it('re-added soon after it left, a listener is not probed again (its workers may still be closing it); after forgetMs it is', async () => {
    const port = await freePort();
    const { g, held } = gate(100);
    g.update([{ key: `:${port}`, address: '', port }]);
    await waitFor('released', () => held.length > 0, 2000, 10);
    g.update([]);
    expect(g.update([{ key: `:${port}`, address: '', port }])).toEqual([]);
    g.update([]);
    await sleep(150);
    expect(g.update([{ key: `:${port}`, address: '', port }])).toEqual([`:${port}`]);
    g.stop();
  });
});
