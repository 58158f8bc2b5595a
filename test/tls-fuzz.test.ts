// Fuzzes the ClientHello parser with random bytes and mutations of real ClientHellos. Seeded:
// a failure prints the seed and case number; rerun with TLS_FUZZ_SEED=<seed> to reproduce.

import { beforeAll, describe, expect, it } from 'vitest';
import { prng } from './helpers/prng.ts';
import { ClientHelloParser, parseClientHello, type ClientHelloResult } from '../tls/clienthello.ts';
import { buildClientHello, captureClientHello, clientHelloBody, handshakeMessage, toRecords } from '../tls/testing/clienthello-builder.ts';

const SEED = Number(process.env.TLS_FUZZ_SEED ?? 0x5eed_71c5);
const CASES = Number(process.env.TLS_FUZZ_CASES ?? 120_000);

/** Offsets (in the raw record bytes) of every length field of a well-formed hello. */
function lengthFields(raw: Buffer): { at: number; size: number }[] {
  const fields: { at: number; size: number }[] = [];
  const map: number[] = []; // handshake offset -> raw offset
  const hs: number[] = [];
  for (let at = 0; at + 5 <= raw.length; ) {
    fields.push({ at: at + 3, size: 2 });
    const len = raw.readUInt16BE(at + 3);
    for (let i = 0; i < len && at + 5 + i < raw.length; i++) {
      map.push(at + 5 + i);
      hs.push(raw[at + 5 + i]);
    }
    at += 5 + len;
  }
  const h = Buffer.from(hs);
  const field = (off: number, size: number): void => {
    // A field whose bytes straddle two records cannot be rewritten in place; skip those.
    if (off + size <= h.length && map[off + size - 1] === map[off] + size - 1) fields.push({ at: map[off], size });
  };
  field(1, 3);
  let p = 4 + 34;
  field(p, 1);
  p += 1 + h[p];
  field(p, 2);
  p += 2 + h.readUInt16BE(p);
  field(p, 1);
  p += 1 + h[p];
  if (p + 2 > h.length) return fields;
  field(p, 2);
  p += 2;
  while (p + 4 <= h.length) {
    const type = h.readUInt16BE(p);
    const len = h.readUInt16BE(p + 2);
    field(p + 2, 2);
    if (type === 0 || type === 16) field(p + 4, 2);
    if (type === 0) field(p + 7, 2);
    if (type === 16) field(p + 6, 1);
    p += 4 + len;
  }
  return fields;
}

const ERRORS = new Set(['not-tls', 'malformed', 'invalid-sni', 'too-large']);
const HOST = /^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$/;

function checkShape(r: ClientHelloResult, input: Buffer): string | undefined {
  if (r === 'need-more') return undefined;
  if (r.ok) {
    if (!(r.consumedBytes > 0 && r.consumedBytes <= Math.max(input.length, 0) + 16384 + 5)) return `consumedBytes ${r.consumedBytes}`;
    if (r.serverName !== undefined && !HOST.test(r.serverName)) return `serverName ${JSON.stringify(r.serverName)}`;
    if (!Array.isArray(r.alpn) || r.alpn.some((p) => typeof p !== 'string' || p.length === 0)) return 'alpn';
    return undefined;
  }
  return ERRORS.has(r.error) && typeof r.detail === 'string' ? undefined : `error ${r.error}`;
}

let corpus: Buffer[] = [];

beforeAll(async () => {
  const real = await Promise.all([
    captureClientHello({ servername: 'fuzz.example.com', ALPNProtocols: ['h2', 'http/1.1'] }),
    captureClientHello({ servername: '', maxVersion: 'TLSv1.2' }),
    captureClientHello({ servername: 'a.b', minVersion: 'TLSv1.3', ALPNProtocols: ['http/1.1'] }),
  ]);
  const built = [
    buildClientHello({ serverName: 'x.test', alpn: ['h2'] }, [7, 30]),
    buildClientHello({ serverName: 'y.test', alpn: ['a', 'bb', 'ccc'], extensions: [[43, Buffer.from([2, 3, 4])]] }, 1),
    buildClientHello({ noExtensions: true, sessionIdLength: 0 }),
    toRecords(handshakeMessage(clientHelloBody({ serverName: 'z.test', extensions: [[21, Buffer.alloc(500)]] })), 64),
  ];
  corpus = [...real, ...built];
});

describe('ClientHello parser fuzz', () => {
  it(`survives ${CASES} random and mutated inputs; the answer never depends on chunking (seed ${SEED})`, () => {
    const rand = prng(SEED);
    const int = (n: number): number => Math.floor(rand() * n);
    const fieldsOf = corpus.map(lengthFields);
    const failures: string[] = [];
    const counts: Record<string, number> = {};
    const started = performance.now();

    for (let i = 0; i < CASES && failures.length < 5; i++) {
      const baseIndex = int(corpus.length);
      const base = corpus[baseIndex];
      let data: Buffer;
      const kind = int(9);
      switch (kind) {
        case 0: // pure random bytes, sometimes with a plausible record header
          data = Buffer.from(Array.from({ length: int(300) }, () => int(256)));
          if (rand() < 0.5 && data.length > 5) data.set([22, 3, int(4)], 0);
          break;
        case 1: // truncation
          data = base.subarray(0, int(base.length));
          break;
        case 2: {
          // bit flips
          data = Buffer.from(base);
          for (let n = 1 + int(8); n > 0; n--) data[int(data.length)] ^= 1 << int(8);
          break;
        }
        case 3:
        case 4: {
          // a length field set to something else: off by a little, zero, max or random
          data = Buffer.from(base);
          const fields = fieldsOf[baseIndex];
          const f = fields[int(fields.length)];
          const max = f.size === 1 ? 0xff : f.size === 2 ? 0xffff : 0xffffff;
          const old = f.size === 1 ? data[f.at] : f.size === 2 ? data.readUInt16BE(f.at) : data.readUIntBE(f.at, 3);
          const choices = [old + 1, old - 1, old + 1 + int(16), old - 1 - int(16), 0, max, int(max + 1)];
          const v = Math.min(max, Math.max(0, choices[int(choices.length)]));
          data.writeUIntBE(v, f.at, f.size);
          break;
        }
        case 5: {
          // delete or insert a run of bytes
          const at = int(base.length);
          const n = 1 + int(8);
          data = rand() < 0.5
            ? Buffer.concat([base.subarray(0, at), base.subarray(Math.min(base.length, at + n))])
            : Buffer.concat([base.subarray(0, at), Buffer.from(Array.from({ length: n }, () => int(256))), base.subarray(at)]);
          break;
        }
        case 6: {
          // duplicate a slice somewhere else (repeated extensions, repeated records)
          const from = int(base.length);
          const to = Math.min(base.length, from + 1 + int(64));
          const at = int(base.length);
          data = Buffer.concat([base.subarray(0, at), base.subarray(from, to), base.subarray(at)]);
          break;
        }
        case 7: {
          // overwrite a random run with one value (0x00 or 0xff runs reach edge cases fast)
          data = Buffer.from(base);
          const at = int(data.length);
          data.fill(rand() < 0.5 ? 0 : 0xff, at, Math.min(data.length, at + 1 + int(12)));
          break;
        }
        default:
          // unmutated, only re-chunked below
          data = base;
      }

      let whole: ClientHelloResult;
      let chunked: ClientHelloResult = 'need-more';
      try {
        whole = parseClientHello(data);
        const parser = new ClientHelloParser();
        const everyByte = i % 97 === 0;
        for (let at = 0; at < data.length; ) {
          const n = everyByte ? 1 : 1 + int(rand() < 0.3 ? 8 : 700);
          chunked = parser.push(data.subarray(at, at + n));
          at += n;
          if (chunked !== 'need-more') break;
        }
        if (data.length === 0) chunked = parser.push(data);
      } catch (err) {
        failures.push(`case ${i} (seed ${SEED}) threw ${(err as Error).stack}\ninput ${data.toString('hex')}`);
        continue;
      }
      const a = JSON.stringify(whole);
      const b = JSON.stringify(chunked);
      if (a !== b) failures.push(`case ${i} (seed ${SEED}): one-shot ${a} but chunked ${b}\ninput ${data.toString('hex')}`);
      const shape = checkShape(whole, data);
      if (shape !== undefined) failures.push(`case ${i} (seed ${SEED}): bad result (${shape}) ${a}\ninput ${data.toString('hex')}`);
      if (kind === 8 && (whole === 'need-more' || !whole.ok)) failures.push(`case ${i}: unmutated hello refused: ${a}`);
      const key = whole === 'need-more' ? 'need-more' : whole.ok ? 'ok' : whole.error;
      counts[key] = (counts[key] ?? 0) + 1;
    }
    const elapsed = performance.now() - started;
    expect(failures, failures.join('\n\n')).toEqual([]);
    // Every outcome should be exercised, or the mutations are not reaching the parser's depths.
    for (const k of ['ok', 'need-more', 'not-tls', 'malformed', 'invalid-sni']) expect(counts[k] ?? 0, JSON.stringify(counts)).toBeGreaterThan(100);
    expect(elapsed).toBeLessThan(25_000);
  });

  it('a hello dribbled as 1-byte records up to the cap costs little', () => {
    const data = toRecords(handshakeMessage(clientHelloBody({ serverName: 'a.test', extensions: Array.from({ length: 1200 }, (_, i): [number, Buffer] => [1000 + i, Buffer.alloc(0)]) })), 1);
    const parser = new ClientHelloParser(64 * 1024);
    const t = performance.now();
    let r: ClientHelloResult = 'need-more';
    for (let i = 0; i < data.length && r === 'need-more'; i++) r = parser.push(data.subarray(i, i + 1));
    expect(r).toMatchObject({ ok: true, serverName: 'a.test' });
    expect(performance.now() - t).toBeLessThan(2000);
  });
});
