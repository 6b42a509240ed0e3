/**
 * The badge on each cell that ran under `%%cache`, and on each cell automatic mode stored or
 * replayed: `.jp-nbcache-badge` with `data-nbcache-status` (hit, stored, skipped, error); a click
 * shows the explanation. A cell automatic mode ran without storing it has no badge.
 */
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { Cell } from '@jupyterlab/cells';
import { INotebookModel, NotebookPanel } from '@jupyterlab/notebook';
import { PanelLayout, Widget } from '@lumino/widgets';

import { NbCacheConnection } from './connection';
import { badgeText, badgeTitle, explanationRows, IStatusMessage, showsBadge } from './helpers';

const BADGE_CLASS = 'jp-nbcache-badge';

/**
 * A row under a cell's input holding a small button with the cell's last cache status. (A row,
 * not a corner of the input: the cell toolbar covers the input's top right corner.)
 */
export class CacheBadge extends Widget {
  constructor() {
    super();
    this.addClass('jp-nbcache-badge-row');
    this._button = document.createElement('button');
    this._button.className = BADGE_CLASS;
    this._button.addEventListener('click', event => {
      event.stopPropagation();
      if (this._message) {
        void showExplanation(this._message);
      }
    });
    this.node.appendChild(this._button);
  }

  get message(): IStatusMessage | null {
    return this._message;
  }

  set message(message: IStatusMessage | null) {
    this._message = message;
    const button = this._button;
    if (!message) {
      button.removeAttribute('data-nbcache-status');
      button.textContent = '';
      return;
    }
    button.dataset.nbcacheStatus = message.status;
    button.textContent = badgeText(message);
    button.title = badgeTitle(message);
  }

  private _button: HTMLButtonElement;
  private _message: IStatusMessage | null = null;
}

/** The explanation of one run, in a dialog. */
export function showExplanation(message: IStatusMessage): Promise<unknown> {
  const body = document.createElement('table');
  body.className = 'jp-nbcache-explanation';
  for (const [label, value] of explanationRows(message)) {
    const row = body.insertRow();
    const th = document.createElement('th');
    th.textContent = label;
    row.appendChild(th);
    row.insertCell().textContent = value;
  }
  return showDialog({
    title: 'nbcache',
    body: new Widget({ node: body }),
    buttons: [Dialog.okButton({ label: 'Close' })]
  });
}

/** Keeps the badges of one notebook in step with its connection's statuses. */
export class NotebookBadges {
  constructor(
    readonly panel: NotebookPanel,
    readonly connection: NbCacheConnection
  ) {
    connection.statusReceived.connect(this._onStatus, this);
    panel.content.modelChanged.connect(this._onModelChanged, this);
    this._onModelChanged();
    panel.disposed.connect(() => this.dispose());
  }

  dispose(): void {
    this.connection.statusReceived.disconnect(this._onStatus, this);
    for (const badge of this._badges.values()) {
      badge.dispose();
    }
    this._badges.clear();
  }

  private _onModelChanged(): void {
    this._model?.cells.changed.disconnect(this._applyAll, this);
    this._model = this.panel.content.model;
    this._model?.cells.changed.connect(this._applyAll, this);
    this._applyAll();
  }

  private _onStatus(_: NbCacheConnection, message: IStatusMessage): void {
    if (!message.cell_id) {
      return;
    }
    const cell = this.panel.content.widgets.find(c => c.model.id === message.cell_id);
    if (cell) {
      this._apply(cell, message);
    }
  }

  private _applyAll(): void {
    for (const cell of this.panel.content.widgets) {
      const message = this.connection.statuses.get(cell.model.id);
      if (message) {
        this._apply(cell, message);
      }
    }
  }

  private _apply(cell: Cell, message: IStatusMessage): void {
    let badge = this._badges.get(cell);
    if (!showsBadge(message)) {
      // automatic mode ran the cell as is: no badge, and none left from an earlier run
      badge?.dispose();
      this._badges.delete(cell);
      return;
    }
    if (!badge || badge.isDisposed || !badge.parent) {
      // Right under the input: the input's wrapper is a direct child of the cell's layout.
      const layout = cell.layout as PanelLayout;
      const inputWrapper = cell.inputArea?.parent;
      const index = inputWrapper ? layout.widgets.indexOf(inputWrapper) : -1;
      if (index < 0) {
        // Not rendered yet (cells are created lazily): try once more when it is.
        if (!cell.isDisposed && !this._waiting.has(cell)) {
          this._waiting.add(cell);
          void cell.ready.then(() => {
            this._waiting.delete(cell);
            const wrapper = cell.inputArea?.parent;
            if (!cell.isDisposed && wrapper && (cell.layout as PanelLayout).widgets.includes(wrapper)) {
              this._apply(cell, message);
            }
          });
        }
        return;
      }
      badge = new CacheBadge();
      layout.insertWidget(index + 1, badge);
      this._badges.set(cell, badge);
      cell.disposed.connect(() => this._badges.delete(cell));
    }
    badge.message = message;
  }

  private _badges = new Map<Cell, CacheBadge>();
  private _waiting = new Set<Cell>();
  private _model: INotebookModel | null = null;
}
