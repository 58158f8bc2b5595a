// The fast path writes its access log lines itself (src/http1/server.ts accessWriter): they must
// be the lines pino writes for the same fields, and any logger whose lines pino would shape
// otherwise keeps going through pino.

import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { accessWriter, jsonString } from '../src/http1/server.ts';

function capture(opts: pino.LoggerOptions): { log: pino.Logger; lines: string[] } {
  const lines: string[] = [];
  const log = pino({ level: 'info', timestamp: pino.stdTimeFunctions.isoTime, ...opts }, { write: (s: string) => void lines.push(s) });
  return { log, lines };
}

const sameTime = (s: string) => s.replace(/"time":"[^"]+"/, '"time":"T"');

describe('access log lines written directly', () => {
  it('are byte for byte the lines pino writes for the same object', () => {
    const { log, lines } = capture({ base: { component: 'worker', pid: 42 } });
    const child = log.child({ listener: 'http' });
    for (const l of [log, child]) {
      const write = accessWriter(l);
      expect(write).toBeDefined();
      const fields = { type: 'access', client: '127.0.0.1', method: 'GET', host: 'a "quoted" \\ host\u0001', path: '/caf\xe9?q=1', proto: 'HTTP/1.1', status: 200, duration_ms: 1.234, route: 'ns/r#0.0', upstream: 'http://10.0.0.1:80', aborted: true, error: 'x', user_agent: 'curl/8' };
      l.info(fields);
      write!(Object.entries(fields).map(([k, v]) => `,${JSON.stringify(k)}:${JSON.stringify(v)}`).join(''));
      expect(lines).toHaveLength(2);
      expect(sameTime(lines[1])).toBe(sameTime(lines[0]));
      lines.length = 0;
    }
  });

  it('are left to pino when a formatter, mixin, hook or serializer could change them', () => {
    expect(accessWriter(capture({ formatters: { log: (o) => o } }).log)).toBeUndefined();
    expect(accessWriter(capture({ mixin: () => ({ a: 1 }) }).log)).toBeUndefined();
    expect(accessWriter(capture({ hooks: { streamWrite: (s) => s } }).log)).toBeUndefined();
    expect(accessWriter(capture({ serializers: { path: (p: string) => p } }).log)).toBeUndefined();
    expect(accessWriter(capture({}).log)).toBeDefined();
  });
});

describe('jsonString', () => {
  it('is JSON.stringify for every string, the plain ones without its call', () => {
    const cases = ['', '/', '/a b?c=d&e', 'caf\xe9', 'snow \u2603', 'quote " and \\ backslash', 'tab\tnew\nline\r', '\u0000\u001f\u007f', 'pair \ud83d\ude00', 'lone \ud800 high', 'lone \udc00 low', '</script>'];
    for (let c = 0; c < 0x10000; c += 97) cases.push(String.fromCharCode(c, c + 1, c + 2));
    for (const s of cases) expect(jsonString(s)).toBe(JSON.stringify(s));
  });
});
