// lockdown(): option mapping in-process, enforcement in child processes (a sandbox cannot be undone,
// so nothing here locks down the test process itself).
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildRules, reportFrom, type LockdownOptions } from '../src/main/lockdown.js';
import { catchError } from './helpers.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const fixture = path.join(root, 'test', 'fixtures', 'lockdown', 'probe.mjs');
const addonPath =
  process.env.ELECTRON_IPC_CHANNEL_NATIVE || path.join(root, 'build', 'Release', 'electron_ipc_channel.node');
const CHILD_TIMEOUT_MS = 20_000;


describe('buildRules', () => {
  it('maps no options to empty allow-lists with both scopes on', () => {
    expect(buildRules()).toEqual({
      readPaths: [],
      writePaths: [],
      execPaths: [],
      bindPorts: [],
      connectPorts: [],
      scopeSignals: true,
      scopeAbstractSockets: true,
    });
  });

  it('passes allow-lists and scope flags through', () => {
    expect(
      buildRules({
        allowRead: ['/usr/share/zoneinfo', '/etc/hosts'],
        allowWrite: ['/tmp/x'],
        allowExec: ['/usr/bin'],
        allowBind: [0, 8080],
        allowConnect: [443],
        scopeSignals: false,
        scopeAbstractSockets: false,
        required: true,
      }),
    ).toEqual({
      readPaths: ['/usr/share/zoneinfo', '/etc/hosts'],
      writePaths: ['/tmp/x'],
      execPaths: ['/usr/bin'],
      bindPorts: [0, 8080],
      connectPorts: [443],
      scopeSignals: false,
      scopeAbstractSockets: false,
    });
  });

  it('rejects misuse with TypeError or RangeError', () => {
    expect(catchError(() => buildRules(null as unknown as LockdownOptions))).toBeInstanceOf(TypeError);
    expect(catchError(() => buildRules({ allowRead: '/etc' as unknown as string[] }))).toBeInstanceOf(TypeError);
    expect(catchError(() => buildRules({ allowWrite: [''] }))).toBeInstanceOf(TypeError);
    expect(catchError(() => buildRules({ allowExec: ['/bin\0x'] }))).toBeInstanceOf(TypeError);
    expect(catchError(() => buildRules({ allowConnect: ['80' as unknown as number] }))).toBeInstanceOf(TypeError);
    expect(catchError(() => buildRules({ allowConnect: [65536] }))).toBeInstanceOf(RangeError);
    expect(catchError(() => buildRules({ allowBind: [-1] }))).toBeInstanceOf(RangeError);
    expect(catchError(() => buildRules({ allowBind: [80.5] }))).toBeInstanceOf(RangeError);
    expect(catchError(() => buildRules({ scopeSignals: 'yes' as unknown as boolean }))).toBeInstanceOf(TypeError);
    expect(catchError(() => buildRules({ required: 1 as unknown as boolean }))).toBeInstanceOf(TypeError);
    const typo = catchError(() => buildRules({ allowReads: ['/etc'] } as unknown as LockdownOptions));
    expect(typo).toBeInstanceOf(TypeError);
    expect((typo as Error).message).toMatch(/unknown option 'allowReads'/);
  });
});

describe('reportFrom', () => {
  const rules = buildRules();

  it('reports everything enforced at ABI 7', () => {
    const report = reportFrom({ abi: 7, handledAccessFs: 0xffff, handledAccessNet: 3, scoped: 3, unrestrictedThreads: 0 }, rules);
    expect(report).toEqual({
      enforced: true,
      abi: 7,
      filesystem: true,
      network: true,
      scoped: ['abstract-unix-socket', 'signal'],
      noNewPrivs: true,
      unrestrictedThreads: 0,
    });
  });

  it('says what is missing on older kernels', () => {
    const abi3 = reportFrom({ abi: 3, handledAccessFs: 0x7fff, handledAccessNet: 0, scoped: 0 }, rules);
    expect(abi3).toMatchObject({ enforced: true, filesystem: true, network: false, scoped: [] });
    expect(abi3.reason).toMatch(/TCP is not restricted: needs Landlock ABI 4/);
    expect(abi3.reason).toMatch(/not scoped: needs Landlock ABI 6/);
    const none = reportFrom({ abi: 0, handledAccessFs: 0, handledAccessNet: 0, scoped: 0 }, rules);
    expect(none).toMatchObject({ enforced: false, abi: 0, filesystem: false, network: false, noNewPrivs: true });
    expect(none.reason).toMatch(/Landlock is not available/);
  });

  it('reports threads that could not be restricted', () => {
    const report = reportFrom({ abi: 7, handledAccessFs: 0xffff, handledAccessNet: 3, scoped: 3, unrestrictedThreads: 2 }, rules);
    expect(report.unrestrictedThreads).toBe(2);
    expect(report.reason).toMatch(/2 thread\(s\) block every signal/);
  });
});

interface Outcome {
  ok: boolean;
  value?: unknown;
  code?: string;
  message?: string;
}
type Probe = Record<string, Outcome>;

describe.skipIf(process.platform !== 'linux' || !existsSync(addonPath))('lockdown in a child process', () => {
  let dir: string;
  let lib: string;
  let tcpServer: net.Server;
  let unixServer: net.Server;
  let tcpPort: number;
  const unixPath = () => path.join(dir, 'unix.sock');
  const base = () => ({
    readable: path.join(dir, 'readable', 'allowed.txt'),
    preopen: path.join(dir, 'preopened.txt'),
    tcpPort,
    unixPath: unixPath(),
  });

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'lockdown-test-'));
    lib = path.join(dir, 'lockdown.mjs');
    // Children are plain Node 20 (no TypeScript): bundle the real lockdown.ts for them.
    await build({
      entryPoints: [path.join(root, 'src', 'main', 'lockdown.ts')],
      bundle: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      outfile: lib,
      logLevel: 'silent',
    });
    writeFileSync(path.join(dir, 'preopened.txt'), 'opened before lockdown');
    writeFileSync(path.join(dir, 'inherited.txt'), 'inherited from the parent');
    mkdirSync(path.join(dir, 'readable'));
    mkdirSync(path.join(dir, 'writable'));
    writeFileSync(path.join(dir, 'readable', 'allowed.txt'), 'allowed');
    tcpServer = net.createServer((s) => s.destroy());
    await new Promise<void>((resolve) => tcpServer.listen(0, '127.0.0.1', resolve));
    tcpPort = (tcpServer.address() as net.AddressInfo).port;
    unixServer = net.createServer((s) => s.destroy());
    await new Promise<void>((resolve) => unixServer.listen(unixPath(), resolve));
  });

  afterAll(async () => {
    await new Promise((resolve) => tcpServer?.close(resolve));
    await new Promise((resolve) => unixServer?.close(resolve));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function run(input: Record<string, unknown>): Promise<Probe> {
    const inheritedFd = openSync(path.join(dir, 'inherited.txt'), 'r');
    return new Promise<Probe>((resolve, reject) => {
      const child = spawn(process.execPath, [fixture, JSON.stringify({ lib, inheritedFd: 3, ...input })], {
        stdio: ['ignore', 'pipe', 'pipe', inheritedFd],
        env: { ...process.env, ELECTRON_IPC_CHANNEL_NATIVE: addonPath },
      });
      closeSync(inheritedFd);
      let stdout = '';
      let stderr = '';
      child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`probe timed out after ${CHILD_TIMEOUT_MS} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
      }, CHILD_TIMEOUT_MS);
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        if (code !== 0) {
          reject(new Error(`probe exited with ${code ?? signal}\nstdout: ${stdout}\nstderr: ${stderr}`));
          return;
        }
        try {
          resolve(JSON.parse(stdout) as Probe);
        } catch {
          reject(new Error(`probe printed no JSON\nstdout: ${stdout}\nstderr: ${stderr}`));
        }
      });
    });
  }

  it('denies new paths, TCP and signals outside, keeps open descriptors and allowed paths', async () => {
    const r = await run({ mode: 'lockdown', ...base(), options: { allowRead: [path.join(dir, 'readable')] } });
    expect(r.lockdown.ok, r.lockdown.message).toBe(true);
    const report = r.lockdown.value as Record<string, unknown>;
    expect(report).toMatchObject({ enforced: true, filesystem: true, noNewPrivs: true });
    expect(report.abi).toBeGreaterThanOrEqual(1);

    expect(r.readHostname).toMatchObject({ ok: false, code: 'EACCES' });
    // Asynchronous fs runs on libuv threadpool threads started before lockdown.
    expect(r.readHostnameAsync).toMatchObject({ ok: false, code: 'EACCES' });
    expect(r.readdirEtc).toMatchObject({ ok: false, code: 'EACCES' });
    expect(r.writeTmp).toMatchObject({ ok: false, code: 'EACCES' });
    expect(r.exec).toMatchObject({ ok: false, code: 'EACCES' });

    expect(r.readAllowed).toEqual({ ok: true, value: 'allowed' });
    expect(r.readAllowedAsync).toEqual({ ok: true, value: 'allowed' });
    expect(r.preopened).toEqual({ ok: true, value: 'opened before lockdown' });
    expect(r.inherited).toEqual({ ok: true, value: 'inherited from the parent' });
    expect(r.killSelf.ok).toBe(true);
    // Pathname Unix sockets (how channels connect) are not a Landlock access at ABI <= 7.
    expect(r.unixConnect).toEqual({ ok: true, value: 'connected' });

    if ((report.abi as number) >= 4) {
      expect(report.network).toBe(true);
      expect(r.tcpConnect).toMatchObject({ ok: false, code: 'EACCES' });
      expect(r.tcpListen).toMatchObject({ ok: false, code: 'EACCES' });
    }
    if ((report.abi as number) >= 6) {
      expect(report.scoped).toEqual(['abstract-unix-socket', 'signal']);
      expect(r.killParent).toMatchObject({ ok: false, code: 'EPERM' });
    }
  });

  it('allows the listed TCP ports, write trees, and signals when scopeSignals is false', async () => {
    const writeDir = path.join(dir, 'writable');
    const r = await run({
      mode: 'lockdown',
      ...base(),
      writeDir,
      options: {
        allowRead: [path.join(dir, 'readable'), writeDir],
        allowWrite: [writeDir],
        allowConnect: [tcpPort],
        allowBind: [0],
        scopeSignals: false,
      },
    });
    expect(r.lockdown.ok, r.lockdown.message).toBe(true);
    const report = r.lockdown.value as Record<string, unknown>;
    expect(r.writeAllowed).toEqual({ ok: true, value: 'written' });
    expect(r.writeTmp).toMatchObject({ ok: false, code: 'EACCES' });
    expect(r.readHostname).toMatchObject({ ok: false, code: 'EACCES' });
    expect(r.killParent.ok).toBe(true);
    if ((report.abi as number) >= 4) {
      expect(r.tcpConnect).toEqual({ ok: true, value: 'connected' });
      expect(r.tcpListen.ok).toBe(true);
    }
    if ((report.abi as number) >= 6) expect(report.scoped).toEqual(['abstract-unix-socket']);
  });

  it('reports what was enforced with required: true', async () => {
    const r = await run({ mode: 'lockdown', ...base(), options: { required: true } });
    // This kernel has Landlock (the suite cannot simulate its absence); required changes nothing then.
    expect(r.lockdown.ok, r.lockdown.message).toBe(true);
    const report = r.lockdown.value as Record<string, unknown>;
    expect(report).toMatchObject({ enforced: true, filesystem: true, noNewPrivs: true });
    expect(typeof report.unrestrictedThreads).toBe('number');
    if ((report.abi as number) >= 7) {
      expect(report).toMatchObject({ network: true, scoped: ['abstract-unix-socket', 'signal'] });
    }
  });

  it('throws IpcError OS and applies nothing when an allowed path does not exist', async () => {
    const missing = path.join(dir, 'missing');
    const r = await run({ mode: 'lockdown', ...base(), options: { allowRead: [missing] } });
    expect(r.lockdown).toMatchObject({ ok: false, code: 'OS' });
    expect(r.lockdown.message).toContain(missing);
    expect(r.readHostname.ok).toBe(true);
    expect(r.tcpConnect.ok).toBe(true);
  });

  it('applies the native rules directly (addon contract)', async () => {
    const rules = buildRules({ allowRead: [path.join(dir, 'readable', 'allowed.txt')] });
    const r = await run({ mode: 'native', ...base(), rules });
    expect(r.lockdown.ok, r.lockdown.message).toBe(true);
    const result = r.lockdown.value as Record<string, number>;
    expect(result.abi).toBeGreaterThanOrEqual(1);
    expect(result.handledAccessFs).toBeGreaterThan(0);
    // A single allowed file: that file only.
    expect(r.readAllowed).toEqual({ ok: true, value: 'allowed' });
    expect(r.readHostname).toMatchObject({ ok: false, code: 'EACCES' });
  });
});
