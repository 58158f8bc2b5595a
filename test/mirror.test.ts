// src/mirror.ts: which mirrors a request is sampled for, and the chunked body a fast-path mirror
// copy is decoded from.
import { describe, expect, it } from 'vitest';
import { chooseMirrors, dechunkedMirrorBody, type MirrorBody } from '../src/mirror.ts';
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
