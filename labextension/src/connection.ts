/**
 * One notebook's link to the `nbcache` comm target in its kernel.
 *
 * The kernel may not have nbcache loaded (`%load_ext nbcache` not run yet): the kernel then closes
 * the comm at once, and we quietly try again after the next execution. A restart drops the comm;
 * it is reopened when the new kernel is idle.
 *
 * Automatic mode (`%cache_all`) is the kernel's; the toolbar toggle asks for it through
 * {@link NbCacheConnection.setAuto}. What was asked is remembered for this notebook: a new kernel
 * (a restart) gets it as soon as it is connected, before any cell it is then asked to run.
 */
import { ISessionContext } from '@jupyterlab/apputils';
import { Kernel } from '@jupyterlab/services';
import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import {
  autoCode,
  FrontendMessage,
  IAutoMessage,
  IEntriesMessage,
  IStatusMessage,
  parseMessage
} from './helpers';

export const TARGET = 'nbcache';

export class NbCacheConnection implements IDisposable {
  constructor(readonly sessionContext: ISessionContext) {
    sessionContext.kernelChanged.connect(this._onKernelChanged, this);
    sessionContext.statusChanged.connect(this._onStatus, this);
    sessionContext.connectionStatusChanged.connect(this._onConnectionStatus, this);
    void sessionContext.ready.then(() => this.connect());
  }

  /** Automatic mode as the kernel last said (null: not heard yet in this kernel). */
  auto: IAutoMessage | null = null;

  /** Whether automatic mode is on, as far as this notebook knows (what was asked, until the kernel says). */
  get autoOn(): boolean {
    return this.auto ? this.auto.on : this._wantAuto === true;
  }

  get autoChanged(): ISignal<this, IAutoMessage | null> {
    return this._autoChanged;
  }

  /** Turn automatic mode on or off in the kernel (loading nbcache there if need be). */
  setAuto(on: boolean): void {
    this._wantAuto = on;
    if (!this.connected || !this.send({ type: 'auto', on })) {
      this._runAuto(on);
    }
    this._autoChanged.emit(this.auto);
  }

  /** The latest status of each cell (by cell id) in this kernel session. */
  readonly statuses = new Map<string, IStatusMessage>();
  /** The latest entries message, null before the first. */
  entries: IEntriesMessage | null = null;

  get statusReceived(): ISignal<this, IStatusMessage> {
    return this._statusReceived;
  }

  get entriesChanged(): ISignal<this, IEntriesMessage | null> {
    return this._entriesChanged;
  }

  /** Whether a comm to a kernel with nbcache loaded is open. */
  get connected(): boolean {
    return this._comm !== null && !this._comm.isDisposed && this._acknowledged;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  /** Open the comm unless one is open or opening. Safe to call often. */
  connect(): void {
    if (this._disposed || (this._comm && !this._comm.isDisposed)) {
      return;
    }
    const kernel = this.sessionContext.session?.kernel;
    if (!kernel || kernel.status === 'dead') {
      return;
    }
    let comm: Kernel.IComm;
    try {
      comm = kernel.createComm(TARGET);
    } catch (reason) {
      return;
    }
    this._comm = comm;
    this._acknowledged = false;
    comm.onMsg = msg => this._onMessage(msg.content.data);
    comm.onClose = () => {
      if (this._comm === comm) {
        this._comm = null;
        this._acknowledged = false;
      }
    };
    try {
      comm.open({});
    } catch (reason) {
      this._comm = null;
    }
  }

  send(message: FrontendMessage): boolean {
    if (!this._comm || this._comm.isDisposed) {
      this.connect();
      return false;
    }
    this._comm.send(message as any);
    return true;
  }

  refresh(): boolean {
    return this.send({ type: 'refresh' });
  }

  invalidate(key: string): boolean {
    return this.send({ type: 'invalidate', key });
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    if (this._comm && !this._comm.isDisposed) {
      try {
        this._comm.close();
      } catch (reason) {
        // the kernel is gone
      }
    }
    this._comm = null;
    Signal.clearData(this);
  }

  private _onMessage(data: unknown): void {
    const message = parseMessage(data);
    if (!message) {
      return;
    }
    this._acknowledged = true;
    if (message.type === 'status') {
      if (message.cell_id) {
        this.statuses.set(message.cell_id, message);
      }
      this._statusReceived.emit(message);
    } else if (message.type === 'auto') {
      this.auto = message;
      if (this._wantAuto !== null) {
        this._wantAuto = message.on; // turned off by %cache_all off: a restart keeps it off
      }
      this._autoChanged.emit(message);
    } else {
      this.entries = message;
      this._entriesChanged.emit(message);
    }
  }

  private _onKernelChanged(): void {
    this._drop();
    this._autoPending = this._wantAuto === true;
    this.connect();
  }

  /** Run the toggle's code silently (no execution count, no output), then look for the comm. */
  private _runAuto(on: boolean): void {
    const kernel = this.sessionContext.session?.kernel;
    if (!kernel || kernel.status === 'dead') {
      return;
    }
    try {
      const future = kernel.requestExecute({ code: autoCode(on), silent: true, store_history: false });
      void future.done.then(
        () => this.connect(),
        () => undefined
      );
    } catch (reason) {
      // no kernel to talk to: the next kernel gets it (_onConnectionStatus)
    }
  }

  private _onConnectionStatus(_: ISessionContext, status: Kernel.ConnectionStatus): void {
    // A new kernel is connected: turn automatic mode on now, before the cells a "Restart and run
    // all" sends next (this runs while the restart is being completed, so this request goes first).
    if (status === 'connected' && this._autoPending) {
      this._autoPending = false;
      this._runAuto(true);
    }
  }

  private _onStatus(_: ISessionContext, status: Kernel.Status): void {
    if (status === 'restarting' || status === 'autorestarting' || status === 'dead') {
      this._drop();
      this._wasRestarted = true;
      this._autoPending = this._wantAuto === true;
    } else if (status === 'idle' && this._wasRestarted) {
      this._wasRestarted = false;
      this.connect();
    }
  }

  private _drop(): void {
    const comm = this._comm;
    this._comm = null;
    this._acknowledged = false;
    if (comm && !comm.isDisposed) {
      comm.dispose();
    }
    if (this.entries !== null) {
      this.entries = null;
      this._entriesChanged.emit(null);
    }
    if (this.auto !== null) {
      this.auto = null;
      this._autoChanged.emit(null);
    }
  }

  private _comm: Kernel.IComm | null = null;
  private _acknowledged = false;
  private _wasRestarted = false;
  private _disposed = false;
  /** What the toggle asked for (null: never used in this notebook). */
  private _wantAuto: boolean | null = null;
  private _autoPending = false;
  private _autoChanged = new Signal<this, IAutoMessage | null>(this);
  private _statusReceived = new Signal<this, IStatusMessage>(this);
  private _entriesChanged = new Signal<this, IEntriesMessage | null>(this);
}

/** The connection of each open notebook, shared by the badges and the panel. */
export class NbCacheConnections {
  get(key: object): NbCacheConnection | undefined {
    return this._map.get(key);
  }

  getOrCreate(key: object, sessionContext: ISessionContext): NbCacheConnection {
    let connection = this._map.get(key);
    if (!connection || connection.isDisposed) {
      connection = new NbCacheConnection(sessionContext);
      this._map.set(key, connection);
    }
    return connection;
  }

  delete(key: object): void {
    this._map.get(key)?.dispose();
    this._map.delete(key);
  }

  private _map = new Map<object, NbCacheConnection>();
}
