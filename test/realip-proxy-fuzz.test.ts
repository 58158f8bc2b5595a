// Fuzz of the PROXY framing and parser: random and mutated v1/v2 headers, seeded so a failure
// reproduces (set FUZZ_SEED and FUZZ_RUNS to replay or to run longer).
import { describe, expect, it } from 'vitest';
import { prng } from './helpers/prng.ts';
import { normalizeIp } from '../src/realip/cidr.ts';
import { V1_MAX_LENGTH, V2_SIGNATURE, classifyConnectionStart, crc32c, readProxyHeader, type ProxyReadResult } from '../src/realip/proxy-protocol.ts';

const SEED = Number(process.env.FUZZ_SEED ?? 0x5eed1234) >>> 0;
const RUNS = Number(process.env.FUZZ_RUNS ?? 1_000_000);

const rand = prng(SEED);
const int = (n: number) => Math.floor(rand() * n);
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)];

function ipv4(): string {
  return `${int(256)}.${int(256)}.${int(256)}.${int(256)}`;
}
function ipv6(): string {
  const g = Array.from({ length: 8 }, () => (rand() < 0.3 ? 0 : int(0x10000)).toString(16));
  if (rand() < 0.2) return `::ffff:${ipv4()}`;
  return g.join(':');
}

function validV1(): Buffer {
  const r = rand();
  if (r < 0.1) return Buffer.from(`PROXY UNKNOWN${rand() < 0.5 ? '' : ` ${ipv6()} ${ipv6()} 1 2`}\r\n`);
  const six = r < 0.5;
  const src = six ? ipv6() : ipv4();
  const dst = six ? ipv6() : ipv4();
  return Buffer.from(`PROXY ${six ? 'TCP6' : 'TCP4'} ${src} ${dst} ${int(65536)} ${int(65536)}\r\n`);
}

function tlv(type: number, value: Buffer): Buffer {
  const b = Buffer.alloc(3 + value.length);
  b[0] = type;
  b.writeUInt16BE(value.length, 1);
  value.copy(b, 3);
  return b;
}

function validV2(): Buffer {
  const local = rand() < 0.15;
  const fam = pick([0, 1, 1, 1, 2, 2, 3]);
  const transport = fam === 0 ? 0 : pick([1, 1, 1, 2]);
  const addrLen = [0, 12, 36, 216][fam];
  const addr = Buffer.alloc(addrLen);
  for (let i = 0; i < addrLen; i++) addr[i] = int(256);
  const tlvs: Buffer[] = [];
  const nTlv = int(4);
  for (let i = 0; i < nTlv; i++) {
    switch (int(5)) {
      case 0:
        tlvs.push(tlv(0x01, Buffer.from(pick(['h2', 'http/1.1']))));
        break;
      case 1:
        tlvs.push(tlv(0x02, Buffer.from(pick(['example.com', 'a.b.c', 'ünï.example']))));
        break;
      case 2:
        tlvs.push(tlv(0xea, Buffer.concat([Buffer.from([0x01]), Buffer.from(`vpce-${int(1e9).toString(16)}`)])));
        break;
      case 3:
        tlvs.push(tlv(0x20, Buffer.from([int(8), 0, 0, 0, 0])));
        break;
      default:
        tlvs.push(tlv(0x04, Buffer.alloc(int(8))));
    }
  }
  const withCrc = rand() < 0.3;
  if (withCrc) tlvs.push(tlv(0x03, Buffer.alloc(4)));
  const body = Buffer.concat([addr, ...tlvs]);
  const head = Buffer.alloc(16);
  V2_SIGNATURE.copy(head);
  head[12] = 0x20 | (local ? 0 : 1);
  head[13] = (fam << 4) | transport;
  head.writeUInt16BE(body.length, 14);
  const h = Buffer.concat([head, body]);
  if (withCrc) h.writeUInt32BE(crc32c(h), h.length - 4);
  return h;
}

function randomBytes(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = int(256);
  return b;
}

const TAILS = [Buffer.alloc(0), Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05]), Buffer.from('\r\n')];

function mutate(b: Buffer): Buffer {
  const out = Buffer.from(b);
  const kind = int(8);
  switch (kind) {
    case 0: // truncation
      return out.subarray(0, int(out.length + 1));
    case 1: {
      // 1-4 bit flips
      const flips = 1 + int(4);
      for (let i = 0; i < flips && out.length > 0; i++) out[int(out.length)] ^= 1 << int(8);
      return out;
    }
    case 2: // v2 length field
      if (out.length >= 16) out.writeUInt16BE(pick([0, 1, 11, 12, 35, 36, 215, 216, int(0x10000), Math.max(0, out.readUInt16BE(14) + int(9) - 4)]), 14);
      return out;
    case 3: // byte overwrite with an interesting value
      if (out.length > 0) out[int(out.length)] = pick([0x00, 0x0d, 0x0a, 0x20, 0x3a, 0x2e, 0xff, 0x30, 0x39]);
      return out;
    case 4: {
      // insert a byte
      const at = int(out.length + 1);
      return Buffer.concat([out.subarray(0, at), Buffer.from([int(256)]), out.subarray(at)]);
    }
    case 5: {
      // delete a byte
      if (out.length === 0) return out;
      const at = int(out.length);
      return Buffer.concat([out.subarray(0, at), out.subarray(at + 1)]);
    }
    case 6: // version/command/family bytes of a v2 header
      if (out.length >= 14) out[12 + int(2)] = int(256);
      return out;
    default: // v1 text tweaks: swap a digit for a long run, add spaces
      if (out[0] === 0x50) {
        const s = out.toString('latin1');
        return Buffer.from(pick([s.replace(/\d+/, '9'.repeat(1 + int(12))), s.replace(' ', '  '), s.replace('\r\n', '\n'), s.replace('TCP', 'UDP'), s.replace(/ \d+\r/, ' -1\r'), s.padEnd(120, 'x')]), 'latin1');
      }
      return out;
  }
}

function input(): Buffer {
  const r = rand();
  if (r < 0.05) return randomBytes(int(64));
  if (r < 0.1) return Buffer.concat([pick([V2_SIGNATURE, Buffer.from('PROXY ')]), randomBytes(int(128))]);
  let b = rand() < 0.45 ? validV1() : validV2();
  const mutations = r < 0.35 ? 0 : 1 + int(3);
  for (let i = 0; i < mutations; i++) b = mutate(b);
  return rand() < 0.7 ? Buffer.concat([b, pick(TAILS)]) : b;
}

function checkDone(b: Buffer, r: ProxyReadResult): void {
  if (r.state !== 'done') return;
  const { consumed, header } = r;
  if (!(consumed > 0 && consumed <= b.length)) throw new Error(`consumed ${consumed} of ${b.length}`);
  if (b[0] === 0x0d) {
    if (consumed !== 16 + b.readUInt16BE(14)) throw new Error(`v2 consumed ${consumed}, declared ${b.readUInt16BE(14)}`);
  } else {
    if (consumed > V1_MAX_LENGTH) throw new Error(`v1 consumed ${consumed}`);
    if (b[consumed - 2] !== 0x0d || b[consumed - 1] !== 0x0a || b.subarray(0, consumed - 2).includes(0x0d)) throw new Error('v1 does not end at the first CRLF');
  }
  for (const p of [header.sourcePort, header.destinationPort]) if (p !== undefined && !(Number.isInteger(p) && p >= 0 && p <= 65535)) throw new Error(`port ${p}`);
  for (const a of [header.sourceAddress, header.destinationAddress]) if (a !== undefined && normalizeIp(a) !== a) throw new Error(`address ${a} not normalised`);
  if ((header.protocol === 'TCP4' || header.protocol === 'TCP6') && header.command === 'PROXY' && header.sourceAddress === undefined) throw new Error('TCP header without source');
}

function sameResult(a: ProxyReadResult, b: ProxyReadResult): boolean {
  if (a.state !== b.state) return false;
  if (a.state === 'done' && b.state === 'done') return a.consumed === b.consumed && JSON.stringify(a.header) === JSON.stringify(b.header);
  return true;
}

describe('PROXY header fuzz', () => {
  it(`${RUNS} random and mutated inputs: no exception, never past the declared length (seed ${SEED})`, () => {
    const started = performance.now();
    const counts = { done: 0, invalid: 0, 'need-more': 0 };
    for (let run = 0; run < RUNS; run++) {
      const b = input();
      let r: ProxyReadResult;
      try {
        r = readProxyHeader(b);
        classifyConnectionStart(b);
        checkDone(b, r);
        counts[r.state]++;
        // A prefix that stops inside a header that parses must ask for more, never decide.
        if (r.state === 'done' && r.consumed > 1) {
          const cut = readProxyHeader(b.subarray(0, int(r.consumed)));
          if (cut.state !== 'need-more') throw new Error(`prefix gave ${cut.state}`);
        }
        if ((run & 15) === 0) {
          // Exactly the header bytes give the same result, and so do extra bytes after it.
          if (r.state === 'done') {
            if (!sameResult(r, readProxyHeader(b.subarray(0, r.consumed)))) throw new Error('header alone parses differently');
            if (!sameResult(r, readProxyHeader(Buffer.concat([b, randomBytes(1 + int(32))])))) throw new Error('trailing bytes changed the result');
          }
          // Feeding split at random points, as TCP may deliver it, ends where the whole buffer does.
          let acc = Buffer.alloc(0);
          let inc: ProxyReadResult = { state: 'need-more' };
          let off = 0;
          const byteAtATime = (run & 255) === 0;
          while (off < b.length && inc.state === 'need-more') {
            const step = byteAtATime ? 1 : 1 + int(24);
            acc = Buffer.concat([acc, b.subarray(off, off + step)]);
            off += step;
            inc = readProxyHeader(acc);
            checkDone(acc, inc);
          }
          if (!sameResult(inc, r)) throw new Error(`incremental ${inc.state} vs whole ${r.state}`);
        }
      } catch (err) {
        throw new Error(`run ${run} (seed ${SEED}) input ${b.toString('hex')}: ${(err as Error).message}`);
      }
    }
    const ms = performance.now() - started;
    console.log(`fuzz: ${RUNS} inputs in ${Math.round(ms)} ms`, counts);
    // Both outcomes must be well represented, or the generator is not testing much.
    expect(counts.done).toBeGreaterThan(RUNS / 5);
    expect(counts.invalid).toBeGreaterThan(RUNS / 10);
    expect(counts['need-more']).toBeGreaterThan(RUNS / 50);
  });

  it('rejects what the spec forbids', () => {
    const v2 = (cmd: number, fam: number, body: Buffer) => {
      const h = Buffer.alloc(16);
      V2_SIGNATURE.copy(h);
      h[12] = cmd;
      h[13] = fam;
      h.writeUInt16BE(body.length, 14);
      return Buffer.concat([h, body]);
    };
    const addr4 = Buffer.from([1, 2, 3, 4, 5, 6, 7, 8, 0x04, 0x57, 0, 80]);
    expect(readProxyHeader(v2(0x11, 0x11, addr4)).state).toBe('invalid'); // version 1 in a v2 signature
    expect(readProxyHeader(v2(0x22, 0x11, addr4)).state).toBe('invalid'); // command 2
    expect(readProxyHeader(v2(0x21, 0x41, addr4)).state).toBe('invalid'); // family 4
    expect(readProxyHeader(v2(0x21, 0x13, addr4)).state).toBe('invalid'); // transport 3
    expect(readProxyHeader(v2(0x21, 0x11, addr4.subarray(0, 11))).state).toBe('invalid'); // short address block
    expect(readProxyHeader(v2(0x21, 0x11, Buffer.concat([addr4, Buffer.from([0x01, 0x00, 0x05, 0x68])]))).state).toBe('invalid'); // TLV past the end
    expect(readProxyHeader(v2(0x21, 0x11, Buffer.concat([addr4, tlv(0x03, Buffer.from([1, 2, 3, 4]))]))).state).toBe('invalid'); // bad CRC32C
    // LOCAL ignores the address block, whatever it says.
    const local = readProxyHeader(v2(0x20, 0x11, Buffer.alloc(0)));
    expect(local.state === 'done' && local.header.command).toBe('LOCAL');
    expect(readProxyHeader(Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n')).state).toBe('invalid');
    expect(readProxyHeader(Buffer.from('PROXY TCP4 ::1 ::1 1 2\r\n')).state).toBe('invalid');
    expect(readProxyHeader(Buffer.from('PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n')).state).toBe('invalid');
    expect(readProxyHeader(Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n')).state).toBe('invalid');
    // Ports: decimal, "Heading zeroes are not permitted" (proxy-protocol.txt 2.1); 0 itself is a port.
    expect(readProxyHeader(Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 00080 443\r\n')).state).toBe('invalid');
    expect(readProxyHeader(Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 80 0443\r\n')).state).toBe('invalid');
    expect(readProxyHeader(Buffer.from('PROXY TCP6 ::1 ::2 01 2\r\n')).state).toBe('invalid');
    expect(readProxyHeader(Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 00 1\r\n')).state).toBe('invalid');
    expect(readProxyHeader(Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 000000000000080 1\r\n')).state).toBe('invalid');
    const zero = readProxyHeader(Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 0 65535\r\n'));
    expect(zero.state === 'done' && [zero.header.sourcePort, zero.header.destinationPort]).toEqual([0, 65535]);
    // Addresses already follow the same rule.
    expect(readProxyHeader(Buffer.from('PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n')).state).toBe('invalid');
    expect(readProxyHeader(Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n')).state).toBe('invalid');
    expect(readProxyHeader(Buffer.from('PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n')).state).toBe('invalid');
    expect(readProxyHeader(Buffer.from('PROXY TCP4 [::1] 5.6.7.8 1 2\r\n')).state).toBe('invalid');
    expect(readProxyHeader(Buffer.from(`PROXY UNKNOWN ${'x'.repeat(120)}\r\n`)).state).toBe('invalid'); // over 107 bytes
    expect(readProxyHeader(Buffer.from(`PROXY UNKNOWN ${'x'.repeat(90)}\r\n`)).state).toBe('done');
    expect(readProxyHeader(Buffer.from(`PROXY UNKNOWN ${'x'.repeat(91)}`)).state).toBe('need-more'); // CR may still come at 105
    expect(readProxyHeader(Buffer.from(`PROXY UNKNOWN ${'x'.repeat(92)}`)).state).toBe('invalid');
    expect(readProxyHeader(Buffer.from('GET / HTTP/1.1\r\n')).state).toBe('invalid');
  });

  it('keeps TLVs as named fields and a raw list', () => {
    const body = Buffer.concat([
      Buffer.from([10, 1, 2, 3, 192, 168, 0, 1, 0x30, 0x39, 0x01, 0xbb]),
      tlv(0x01, Buffer.from('h2')),
      tlv(0x02, Buffer.from('shop.example')),
      tlv(0xea, Buffer.from('\x01vpce-0123abcd', 'latin1')),
      tlv(0x20, Buffer.from([0x01, 0, 0, 0, 0])),
      tlv(0xe0, Buffer.from('custom')),
      tlv(0x03, Buffer.alloc(4)),
    ]);
    const h = Buffer.alloc(16);
    V2_SIGNATURE.copy(h);
    h[12] = 0x21;
    h[13] = 0x11;
    h.writeUInt16BE(body.length, 14);
    const full = Buffer.concat([h, body]);
    full.writeUInt32BE(crc32c(full), full.length - 4);
    const r = readProxyHeader(Buffer.concat([full, Buffer.from('GET / HTTP/1.1\r\n')]));
    expect(r.state).toBe('done');
    if (r.state !== 'done') return;
    expect(r.consumed).toBe(full.length);
    expect(r.header).toMatchObject({ version: 2, command: 'PROXY', protocol: 'TCP4', sourceAddress: '10.1.2.3', sourcePort: 12345, destinationAddress: '192.168.0.1', destinationPort: 443, alpn: 'h2', authority: 'shop.example', awsVpceId: 'vpce-0123abcd', sslClient: true });
    expect(r.header.tlvs.map((t) => t.type)).toEqual([0x01, 0x02, 0xea, 0x20, 0xe0, 0x03]);
    expect(r.header.tlvs[4].value.toString()).toBe('custom');
  });

  it('classifies connection starts', () => {
    const c = (s: string | number[]) => classifyConnectionStart(typeof s === 'string' ? Buffer.from(s, 'latin1') : Buffer.from(s));
    expect(c('PROXY TCP4')).toBe('proxy-v1');
    expect(c('PROX')).toBe('need-more');
    expect(c('\r\n\r\n\0\r\nQUIT\n')).toBe('proxy-v2');
    expect(c('\r\n\r\n')).toBe('need-more');
    expect(c('\r\nGET')).toBe('unknown');
    expect(c([0x16, 0x03, 0x01, 0x02, 0x00])).toBe('tls');
    expect(c([0x16])).toBe('need-more');
    expect(c('GET / HTTP/1.1\r\n')).toBe('http');
    expect(c('POST /x')).toBe('http');
    expect(c('PRI * HTTP/2.0\r\n')).toBe('http');
    expect(c('M-SEARCH * HTTP/1.1')).toBe('http');
    expect(c('GE')).toBe('need-more');
    expect(c('get / HTTP/1.1')).toBe('unknown');
    expect(c('SSH-2.0-OpenSSH')).toBe('unknown');
    expect(c('')).toBe('need-more');
  });
});
