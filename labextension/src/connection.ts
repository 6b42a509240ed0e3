/**
 * One notebook's link to the `nbcache` comm target in its kernel.
 *
 * The kernel may not have nbcache loaded (`%load_ext nbcache` not run yet): the kernel then closes
 * the comm at once, and we quietly try again after the next execution. A restart drops the comm;
 * it is reopened when the new kernel is idle.
 */
import { ISessionContext } from '@jupyterlab/apputils';
import { Kernel } from '@jupyterlab/services';
import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import {
  FrontendMessage,
  IEntriesMessage,
  IStatusMessage,
  parseMessage
} from './helpers';

export const TARGET = 'nbcache';

export class NbCacheConnection implements IDisposable {
  constructor(readonly sessionContext: ISessionContext) {
    sessionContext.kernelChanged.connect(this._onKernelChanged, this);
    sessionContext.statusChanged.connect(this._onStatus, this);
    void sessionContext.ready.then(() => this.connect());
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
    } else {
      this.entries = message;
      this._entriesChanged.emit(message);
    }
  }

  private _onKernelChanged(): void {
    this._drop();
    this.connect();
  }

  private _onStatus(_: ISessionContext, status: Kernel.Status): void {
    if (status === 'restarting' || status === 'autorestarting' || status === 'dead') {
      this._drop();
      this._wasRestarted = true;
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
  }

  private _comm: Kernel.IComm | null = null;
  private _acknowledged = false;
  private _wasRestarted = false;
  private _disposed = false;
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
