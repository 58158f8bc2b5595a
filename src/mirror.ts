// Gateway API RequestMirror on the node:http data path: a copy of the request (method, target and
// headers after the route's filters, and the body as it streams) goes to each mirror backend the
// route's fraction picks. Mirror answers are read and dropped. A mirror never delays the forwarded
// request: its copy of the body is buffered up to a bound, and a mirror that falls behind is cut.

import { PassThrough, type Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { CompiledMirror } from '../router/compile.ts';
import { pickEndpoint } from '../router/index.ts';

/** Body bytes a mirror may lag behind the forwarded request before its copy is cut. */
const MIRROR_BUFFER = 1 << 20;

/** Reads a mirror's answer and drops it. */
class Discard implements Dispatcher.DispatchHandler {
  onRequestStart(): void {}
  onResponseStart(): void {}
  onResponseData(): void {}
  onResponseEnd(): void {}
  onResponseError(): void {}
}
const discard = new Discard();

export interface MirrorPools {
  get(endpoint: NonNullable<ReturnType<typeof pickEndpoint>>, protocol: CompiledMirror['backend']['protocol']): Dispatcher;
}

/**
 * Sends the mirror copies of a request. Returns the body to forward upstream instead of `req`
 * when the body is teed (the request has one and some mirror is chosen), else undefined.
 */
export function startMirrors(pools: MirrorPools, req: Readable, mirrors: readonly CompiledMirror[], method: string, target: string, headers: readonly string[], hasBody: boolean, timeoutMs: number): Readable | undefined {
  const chosen: CompiledMirror[] = [];
  for (const m of mirrors) if (m.fraction >= 1 || (m.fraction > 0 && Math.random() < m.fraction)) chosen.push(m);
  if (chosen.length === 0) return undefined;
  const copies: PassThrough[] = [];
  for (const m of chosen) {
    const endpoint = pickEndpoint(m.backend);
    if (endpoint === undefined) continue; // no ready endpoint: nothing to mirror to
    const body = hasBody ? new PassThrough({ highWaterMark: MIRROR_BUFFER }) : null;
    if (body !== null) {
      body.on('error', () => undefined);
      copies.push(body);
    }
    try {
      pools.get(endpoint, m.backend.protocol).dispatch({ path: target, method, headers: [...headers], body, headersTimeout: timeoutMs, bodyTimeout: timeoutMs, blocking: false }, discard);
    } catch {
      body?.destroy();
    }
  }
  if (!hasBody || copies.length === 0) return undefined;
  // Tee: the forwarded copy keeps the client's backpressure; a mirror copy that fills its
  // buffer is cut instead of slowing the request down.
  const main = new PassThrough();
  req.on('data', (chunk: Buffer) => {
    if (!main.write(chunk)) req.pause();
    for (const c of copies) if (!c.destroyed && !c.write(chunk)) c.destroy();
  });
  main.on('drain', () => req.resume());
  req.on('end', () => {
    main.end();
    for (const c of copies) if (!c.destroyed) c.end();
  });
  req.on('close', () => {
    if (main.writableEnded) return;
    // The client went away mid-body: neither upstream gets a truncated body as if complete.
    main.destroy(new Error('client closed the connection'));
    for (const c of copies) c.destroy();
  });
  return main;
}
