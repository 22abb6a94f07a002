// Runs test/fixtures/containment/victim.mjs with one scenario, in its own process, and checks what
// every containment test needs: the victim exited normally (no crash, no abort), its event loop
// kept running (no heartbeat gap over `maxGapMs`), and it got back to its baseline descriptor count.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { expect } from 'vitest';
import { root } from '../helpers.js';

export interface VictimReport<R = unknown> {
  ok: boolean;
  result: R;
  error?: { name?: string; code?: string; message?: string; stack?: string };
  maxGapMs: number;
  beats: number;
  fdBefore: number;
  fdAfter: number;
}

export interface VictimOptions {
  env?: Record<string, string>;
  args?: string[];
  /** Hard timeout of the whole victim process (default 30 s). */
  timeoutMs?: number;
  /** Node flags, e.g. ['--max-old-space-size=256', '--expose-gc']. */
  nodeArgs?: string[];
  /** RLIMIT_NOFILE of the victim (soft and hard), set with prlimit(1); default: inherited. */
  maxOpenFiles?: number;
}

/** Spawns the victim and returns its report (rejects with its output when it did not report). */
export function runVictim<R = unknown>(scenario: string, options: VictimOptions = {}): Promise<VictimReport<R> & { stderr: string; code: number | null; signal: string | null }> {
  const nodeArgv = [...(options.nodeArgs ?? ['--expose-gc']), path.join(root, 'test', 'fixtures', 'containment', 'victim.mjs'), scenario, ...(options.args ?? [])];
  const limit = options.maxOpenFiles;
  const child = spawn(
    limit === undefined ? process.execPath : 'prlimit',
    limit === undefined ? nodeArgv : [`--nofile=${limit}:${limit}`, process.execPath, ...nodeArgv],
    { env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const timeoutMs = options.timeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`victim ${scenario} did not finish within ${timeoutMs} ms (hung?)\nstdout: ${stdout.slice(-4000)}\nstderr: ${stderr.slice(-4000)}`));
    }, timeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      setImmediate(() => {
        const last = stdout.trim().split('\n').pop() ?? '';
        let report: VictimReport<R>;
        try {
          report = JSON.parse(last) as VictimReport<R>;
        } catch {
          reject(new Error(`victim ${scenario} crashed or gave no report (exit ${code}, signal ${signal})\nstdout: ${stdout.slice(-4000)}\nstderr: ${stderr.slice(-4000)}`));
          return;
        }
        resolve({ ...report, stderr, code, signal });
      });
    });
  });
}

/**
 * The victim survived (exit 0, a report, no error from its scenario), stayed responsive (no
 * heartbeat gap above `maxGapMs`, default 1000 ms) and returned to its baseline descriptor count.
 */
export function expectContained(r: VictimReport & { stderr: string; code: number | null }, maxGapMs = 1000): void {
  expect(r.error, `scenario failed: ${r.error?.stack ?? r.error?.message}\nstderr: ${r.stderr}`).toBeUndefined();
  expect(r.ok).toBe(true);
  expect(r.code, r.stderr).toBe(0);
  expect(r.maxGapMs, 'the event loop was blocked').toBeLessThan(maxGapMs);
  expect(r.fdAfter, 'descriptors left open').toBeLessThanOrEqual(r.fdBefore);
}
