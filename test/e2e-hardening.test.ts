// Issue 8 regressions: requests that used to kill a worker or be answered out of order.
import { beforeAll, describe, expect, it } from 'vitest';
import { rawExchange } from './helpers/http.ts';
import type { Portico } from './helpers/portico.ts';
import { useSite } from './helpers/site.ts';

const site = useSite();
let portico: Portico;
const statuses = (text: string) => [...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1]));
const send = (data: string) => rawExchange(portico.httpPort, data, { waitMs: 3000 });
const H = 'Host: site.test\r\n';

beforeAll(() => {
  portico = site.portico;
});

describe('request hardening', () => {
  it('a request line saying HTTP/2.0 (or any version but 1.0/1.1) gets 505 and no worker restarts', async () => {
    const pids = await portico.workerPids();
    for (const v of ['2.0', '3.0', '1.2', '2.0']) {
      const r = await send(`GET / HTTP/${v}\r\n${H}\r\n`);
      expect(statuses(r.text), v).toEqual([505]);
      expect(r.closed).toBe(true);
    }
    const up = await send(`GET / HTTP/2.0\r\n${H}Upgrade: websocket\r\nConnection: upgrade\r\n\r\n`);
    expect(statuses(up.text)).toEqual([505]);
    expect(await portico.metric('portico_worker_restarts_total')).toBe(0);
    expect(await portico.workerPids()).toEqual(pids);
  });

  it('a malformed request after pipelined ones is answered after them, in order, then closed', async () => {
    const r = await send(`GET /a HTTP/1.1\r\n${H}\r\nGET /b HTTP/1.1\r\n${H}\r\nGET /c HTTP/1.1\r\nHost site.test\r\n\r\n`);
    expect(statuses(r.text)).toEqual([200, 200, 400]);
    expect(r.text.indexOf('"/a"')).toBeLessThan(r.text.indexOf('"/b"'));
    expect(r.closed).toBe(true);
  });

  it('bytes after a Connection: close request are not answered ahead of it', async () => {
    const r = await send(`GET /a HTTP/1.1\r\n${H}Connection: close\r\n\r\nGET /b HTTP/1.1\r\n${H}\r\n`);
    expect(statuses(r.text)).toEqual([200]);
    expect(r.closed).toBe(true);
  });

  it('a broken chunked body is answered 400 at once, not held behind its own response', async () => {
    const r = await send(`POST /a HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n`);
    expect(statuses(r.text)).toEqual([400]);
    expect(r.closed).toBe(true);
  });

  it('HTTP/1.0 with Transfer-Encoding gets 400 after the owed response, and is never proxied', async () => {
    const r = await send(`GET /a HTTP/1.1\r\n${H}\r\nPOST /b HTTP/1.0\r\n${H}Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n`);
    expect(statuses(r.text)).toEqual([200, 400]);
    expect(r.closed).toBe(true);
  });

  it('header names with an underscore are not forwarded (Content_Length is Content-Length to CGI-style backends)', async () => {
    const r = await send(`GET /u HTTP/1.1\r\n${H}Content_Length: 5\r\nX_Admin: 1\r\nConnection: close\r\n\r\n`);
    expect(statuses(r.text)).toEqual([200]);
    expect(r.text.toLowerCase()).not.toContain('content_length');
    expect(r.text.toLowerCase()).not.toContain('x_admin');
  });

  it('userinfo in an absolute-form target is 400, for plain and Upgrade requests', async () => {
    for (const extra of ['', 'Upgrade: websocket\r\nConnection: upgrade\r\n']) {
      const r = await send(`GET http://other.test@site.test/admin/x HTTP/1.1\r\n${H}${extra}\r\n`);
      expect(statuses(r.text), extra).toEqual([400]);
      expect(r.text).toContain('userinfo');
    }
    const ok = await send(`GET http://site.test/x?y=1 HTTP/1.1\r\n${H}Connection: close\r\n\r\n`);
    expect(statuses(ok.text)).toEqual([200]);
    const odd = await send(`GET http://site.test@ HTTP/1.1\r\n${H}\r\n`);
    expect(statuses(odd.text)).toEqual([400]);
  });

  it('an Upgrade pipelined behind requests still owed an answer does not overtake them', async () => {
    for (const first of [`HEAD /first HTTP/1.1\r\n${H}\r\n`, `POST /first HTTP/1.1\r\n${H}Content-Length: 5\r\n\r\nhello`]) {
      const r = await send(`${first}GET /second HTTP/1.1\r\n${H}Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\nGET /third HTTP/1.1\r\n${H}Connection: close\r\n\r\n`);
      // Served in order as a plain request (the Upgrade dropped; the echo backend names the path),
      // then the connection closes: what follows an Upgrade request is not read as HTTP.
      expect(statuses(r.text)).toEqual([200, 200]);
      expect(r.text.indexOf('"url":"/second"')).toBeGreaterThan(0);
      expect(r.text).toMatch(/\r\nConnection: close\r\n/i);
      expect(r.closed).toBe(true);
    }
  });
});
