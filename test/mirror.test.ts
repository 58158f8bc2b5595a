// src/mirror.ts: which mirrors a request is sampled for, the chunked body a fast-path mirror
// copy is decoded from, and the worker's caps on copies (in flight, bytes held).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { chooseMirrors, configureMirrors, dechunkedMirrorBody, mirrorBudget, mirrorRequests, openMirrors, type MirrorBody } from '../src/mirror.ts';
import type { CompiledMirror } from '../router/compile.ts';

const mirror = (name: string, fraction: number): CompiledMirror => ({ backend: { name } as unknown as CompiledMirror['backend'], fraction });

describe('chooseMirrors', () => {
  const all = mirror('a', 1);
  const half = mirror('b', 0.5);
  const none = mirror('c', 0);

  it('takes 1 always, 0 never, a fraction when the draw is below it', () => {
    expect(chooseMirrors(undefined)).toBeUndefined();
    expect(chooseMirrors([all, half, none], () => 0.49)).toEqual([all, half]);
    expect(chooseMirrors([all, half, none], () => 0.5)).toEqual([all]);
    expect(chooseMirrors([none], () => 0)).toBeUndefined();
  });

  it('draws once per sampled mirror, not for 0 or 1', () => {
    let draws = 0;
    chooseMirrors([all, half, none, half], () => (draws++, 0.9));
    expect(draws).toBe(2);
  });
});

describe('dechunkedMirrorBody', () => {
  function sink(): MirrorBody & { data: string; ended: boolean; aborted: boolean } {
    const s = { data: '', ended: false, aborted: false, write: (c: Uint8Array) => void (s.data += Buffer.from(c).toString()), end: () => void (s.ended = true), abort: () => void (s.aborted = true) };
    return s;
  }

  it('passes the chunk data on without framing, across split writes', () => {
    const s = sink();
    const body = dechunkedMirrorBody(s);
    const wire = Buffer.from('5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nTrailer: x\r\n\r\n');
    for (let i = 0; i < wire.length; i += 3) body.write(wire.subarray(i, i + 3));
    body.end();
    expect([s.data, s.ended, s.aborted]).toEqual(['hello, world', true, false]);
  });

  it('aborts the copy on framing it cannot read', () => {
    const s = sink();
    dechunkedMirrorBody(s).write(Buffer.from('zz\r\n'));
    expect(s.aborted).toBe(true);
  });
});

/** The count of portico_mirror_requests_total{result}. */
async function counted(result: string): Promise<number> {
  return (await mirrorRequests.get()).values.find((v) => v.labels.result === result)?.value ?? 0;
}

describe('the worker cap on mirror copies (node:http and HTTP/2 path)', () => {
  let server: http.Server;
  const held: http.ServerResponse[] = [];
  let seen = 0;
  let target: CompiledMirror;

  beforeAll(async () => {
    // Takes each copy and never answers: it stays in flight.
    server = http.createServer((_req, res) => {
      seen++;
      held.push(res);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as AddressInfo).port;
    target = { backend: { name: 'silent', protocol: 'http', endpoints: [{ address: '127.0.0.1', port, origin: `http://127.0.0.1:${port}` }], unavailableReason: undefined, errorStatus: undefined, cursor: new Uint32Array(1) }, fraction: 1 };
  });
  afterEach(() => configureMirrors({ connectTimeoutMs: 5_000, maxInFlight: 512, totalBuffer: 64 << 20 }));
  afterAll(async () => {
    for (const res of held.splice(0)) res.end();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  const req = { method: 'POST', target: '/x', headers: ['host', 'm.test'], timeoutMs: 5_000 };

  it('past the in-flight cap a copy is dropped and counted busy, not queued', async () => {
    configureMirrors({ connectTimeoutMs: 5_000, maxInFlight: mirrorBudget.inFlight + 1 });
    const busy = await counted('busy');
    openMirrors([target], { ...req, method: 'GET' }, false);
    const before = mirrorBudget.inFlight;
    expect(openMirrors([target], { ...req, method: 'GET' }, false)).toBeUndefined();
    expect(mirrorBudget.inFlight).toBe(before);
    expect(await counted('busy')).toBe(busy + 1);
    for (let i = 0; i < 100 && seen < 1; i++) await new Promise((r) => setTimeout(r, 20));
    expect(seen).toBe(1);
  });

  it('a copy whose body would pass the bytes all copies may hold is cut, and gives its share back', async () => {
    configureMirrors({ connectTimeoutMs: 5_000, totalBuffer: mirrorBudget.held + 1000 });
    const cut = await counted('cut');
    const inFlight = mirrorBudget.inFlight;
    const heldBefore = mirrorBudget.held;
    const body = openMirrors([target], req, true)!;
    expect(mirrorBudget.inFlight).toBe(inFlight + 1);
    body.write(Buffer.alloc(500));
    expect(await counted('cut')).toBe(cut);
    // Over the bound whether or not the mirror's connection has read the first 500 bytes yet.
    body.write(Buffer.alloc(2000));
    expect(await counted('cut')).toBe(cut + 1);
    expect([mirrorBudget.inFlight, mirrorBudget.held]).toEqual([inFlight, heldBefore]);
    // More body for the cut copy changes nothing.
    body.write(Buffer.alloc(1000));
    body.end();
    expect(await counted('cut')).toBe(cut + 1);
  });
});
