// Type-level check (compiled by `tsc -p tsconfig.json`, never run): Electron's real objects fit
// the structural types the package declares instead of importing `electron`
// (src/shared/electron-types.ts), so exposeToWindow() accepts a real BrowserWindow/WebContents and
// the `electron` module can stand for the module shapes the code loads at run time.
import type * as Electron from 'electron';
import type {
  BrowserWindowLike,
  ElectronMainModule,
  ElectronRendererModule,
  IpcMainEventLike,
  IpcRendererEventLike,
  MessagePortMainLike,
  UtilityProcessLike,
  WebContentsLike,
} from '../../src/shared/electron-types.js';
import type { exposeToWindow } from '../../src/main/index.js';

type Fits<A extends B, B> = A;

export type Checks = [
  Fits<Electron.BrowserWindow, BrowserWindowLike>,
  Fits<Electron.WebContents, WebContentsLike>,
  Fits<Electron.IpcMainEvent, IpcMainEventLike>,
  Fits<Electron.MessagePortMain, MessagePortMainLike>,
  Fits<Electron.UtilityProcess, UtilityProcessLike>,
  Fits<Electron.IpcRendererEvent, IpcRendererEventLike>,
  Fits<Pick<typeof Electron, 'ipcMain' | 'MessageChannelMain' | 'utilityProcess'>, ElectronMainModule>,
  Fits<Pick<typeof Electron, 'contextBridge' | 'ipcRenderer'>, ElectronRendererModule>,
  Fits<Electron.BrowserWindow, Parameters<typeof exposeToWindow>[0]>,
  Fits<Electron.WebContents, Parameters<typeof exposeToWindow>[0]>,
];
