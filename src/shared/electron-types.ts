/**
 * The few Electron shapes this package touches, declared structurally so that neither the
 * published `.d.ts` nor the source imports `electron`: a Node-only TypeScript user compiles
 * without Electron installed (`--strict`, no `skipLibCheck`), and Electron's real objects
 * (`BrowserWindow`, `WebContents`, `MessagePortMain`, the `electron` module) still fit, because
 * each type lists only members this package uses. Methods are declared as methods (bivariant
 * parameters) so that Electron's overloaded `on(event: 'x', ...)` signatures are assignable.
 * Types only: nothing here exists at run time.
 */

/** A listener for an Electron event emitter, with whatever arguments that event passes. */
export type ElectronListener = (...args: never[]) => void;

/** An Electron event emitter: only the registration methods this package calls. */
export interface ElectronEmitterLike {
  on(event: string, listener: ElectronListener): unknown;
  once(event: string, listener: ElectronListener): unknown;
  removeListener(event: string, listener: ElectronListener): unknown;
}

/** A frame of a `WebContents` (Electron's `WebFrameMain`): its identity. */
export interface WebFrameLike {
  readonly processId: number;
  readonly routingId: number;
}

/** The part of Electron's `WebContents` that `exposeToWindow` uses; a real `WebContents` fits. */
export interface WebContentsLike extends ElectronEmitterLike {
  readonly id: number;
  readonly mainFrame: WebFrameLike;
  isDestroyed(): boolean;
  getURL(): string;
  isLoadingMainFrame(): boolean;
  postMessage(channel: string, message: unknown, transfer?: unknown[]): void;
}

/** The part of Electron's `BrowserWindow` that `exposeToWindow` uses; a real `BrowserWindow` fits. */
export interface BrowserWindowLike {
  readonly webContents: WebContentsLike;
}

/** An `ipcMain` event (Electron's `IpcMainEvent`): who sent it. */
export interface IpcMainEventLike {
  readonly sender: WebContentsLike;
  readonly senderFrame: WebFrameLike | null;
}

/** Electron's `MessagePortMain` as main holds it (events `message` and `close`). */
export interface MessagePortMainLike extends ElectronEmitterLike {
  postMessage(message: unknown, transfer?: unknown[]): void;
  start(): void;
  close(): void;
}

/** Electron's `UtilityProcess` (a child started by `utilityProcess.fork`). */
export interface UtilityProcessLike extends ElectronEmitterLike {
  once(event: 'exit', listener: (code: number) => void): unknown;
  once(event: 'spawn', listener: () => void): unknown;
  readonly pid: number | undefined;
  readonly stdout: NodeJS.ReadableStream | null;
  readonly stderr: NodeJS.ReadableStream | null;
  kill(): boolean;
}

/** What `require('electron')` gives in the main process, as far as this package uses it. */
export interface ElectronMainModule {
  ipcMain: {
    on(channel: string, listener: (event: IpcMainEventLike, ...args: unknown[]) => void): unknown;
  };
  MessageChannelMain: new () => { port1: MessagePortMainLike; port2: MessagePortMainLike };
  utilityProcess: {
    fork(
      modulePath: string,
      args?: string[],
      options?: {
        env?: NodeJS.ProcessEnv;
        cwd?: string;
        execArgv?: string[];
        stdio?: Array<'pipe' | 'ignore' | 'inherit'> | 'pipe' | 'ignore' | 'inherit';
        serviceName?: string;
      },
    ): UtilityProcessLike;
  };
}

/** The event of an `ipcRenderer` listener (Electron's `IpcRendererEvent`): the ports it carried. */
export interface IpcRendererEventLike {
  readonly ports: readonly unknown[];
}

/** What `require('electron')` gives in a preload, as far as this package uses it. */
export interface ElectronRendererModule {
  contextBridge: { exposeInMainWorld(apiKey: string, api: unknown): void };
  ipcRenderer: {
    on(channel: string, listener: (event: IpcRendererEventLike, ...args: unknown[]) => void): unknown;
    send(channel: string, ...args: unknown[]): void;
  };
}
