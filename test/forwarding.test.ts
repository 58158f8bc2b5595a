import { describe, expect, it } from 'vitest';
import { upstreamHeaders, type ForwardedValues } from '../src/forwarding.ts';

const fwd: ForwardedValues = { clientIp: '192.0.2.1', forwardedFor: '192.0.2.1', proto: 'http', host: 'app.test', port: '80' };

describe('upstreamHeaders', () => {
  it('joins cookie fields (HTTP/2 clients send one per cookie) into one, in order', () => {
    const out = upstreamHeaders([':authority', 'app.test', 'cookie', 'a=1', 'accept', '*/*', 'cookie', 'b=2', 'Cookie', 'c=3'], undefined, fwd);
    const cookies = out.filter((_, i) => i % 2 === 0 && out[i].toLowerCase() === 'cookie').length;
    expect(cookies).toBe(1);
    expect(out[out.indexOf('cookie') + 1]).toBe('a=1; b=2; c=3');
    expect(out.slice(0, 4)).toEqual(['cookie', 'a=1; b=2; c=3', 'accept', '*/*']);
  });

  it('leaves a single cookie header as it is', () => {
    const out = upstreamHeaders(['Host', 'app.test', 'Cookie', 'only=1'], undefined, fwd);
    expect(out.slice(0, 4)).toEqual(['Host', 'app.test', 'Cookie', 'only=1']);
  });

  it('drops hop-by-hop headers, those Connection names, and Expect; keeps TE: trailers', () => {
    const out = upstreamHeaders(['Host', 'a', 'Connection', 'x-secret, keep-alive', 'X-Secret', '1', 'Keep-Alive', '5', 'TE', 'trailers', 'Expect', '100-continue', 'Upgrade', 'h2c'], 'x-secret, keep-alive', fwd);
    const names = out.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
    expect(names).toEqual(['host', 'te', 'x-forwarded-for', 'x-real-ip', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port']);
  });

  it('keeps Host even when Connection names it', () => {
    const out = upstreamHeaders(['Host', 'public.example', 'Connection', 'Host'], 'Host', fwd);
    expect(out.slice(0, 2)).toEqual(['Host', 'public.example']);
    expect(out.filter((n) => n.toLowerCase() === 'host')).toHaveLength(1);
  });
});
