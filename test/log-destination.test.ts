// The workers' buffered log destination: lines arrive whole and in order, a stalled reader costs
// bounded memory (dropped lines are counted in a line of their own), and exit writes the rest.
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { BufferedLineDestination } from '../src/log.ts';

let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

function fileFd(): { fd: number; read: () => string } {
  dir = mkdtempSync(join(tmpdir(), 'portico-log-'));
  const path = join(dir, 'out.log');
  const fd = openSync(path, 'w');
  return { fd, read: () => readFileSync(path, 'utf8') };
}

const settle = async (d: BufferedLineDestination) => {
  for (let i = 0; i < 50; i++) {
    d.flush();
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe('BufferedLineDestination', () => {
  it('writes every line whole and in order, through pino, in batches and at exit', async () => {
    const { fd, read } = fileFd();
    const d = new BufferedLineDestination(fd, 1024);
    const log = pino({ base: { pid: 1 } }, d);
    for (let i = 0; i < 3000; i++) log.info({ i, text: 'é'.repeat(i % 7) }, 'line');
    await settle(d);
    log.info({ i: 3000 }, 'last');
    d.flushSync();
    closeSync(fd);
    const lines = read().trimEnd().split('\n').map((l) => JSON.parse(l) as { i: number; text?: string });
    expect(lines.map((l) => l.i)).toEqual(Array.from({ length: 3001 }, (_, i) => i));
    expect(lines[6].text).toBe('éééééé');
  });

  it('past its bound it drops lines instead of growing, and says how many once it can write', async () => {
    const { fd, read } = fileFd();
    const d = new BufferedLineDestination(fd, 100, 4096);
    const line = `${'x'.repeat(99)}\n`;
    // One batch goes out; the rest accumulate synchronously up to the bound, then are dropped.
    let refused = 0;
    for (let i = 0; i < 200; i++) if (!d.write(line)) refused++;
    expect(refused).toBeGreaterThan(100);
    await settle(d);
    d.write('after\n');
    d.flushSync();
    closeSync(fd);
    const text = read();
    expect(text).toMatch(new RegExp(`log output blocked: ${refused} lines dropped`));
    expect(text.endsWith('after\n')).toBe(true);
    expect(text.split('\n').filter((l) => l === 'x'.repeat(99)).length).toBe(200 - refused);
  });
});
