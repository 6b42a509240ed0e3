/**
 * The side panel: the current notebook kernel's cache entries, with totals and invalidate buttons.
 */
import { LabIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { NbCacheConnection } from './connection';
import { autoNote, entryTitle, formatBytes, formatSeconds, IEntriesMessage } from './helpers';

const ICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="16"><g class="jp-icon3" fill="#616161"><ellipse cx="12" cy="5" rx="8" ry="3"/><path d="M4 7v4c0 1.7 3.6 3 8 3s8-1.3 8-3V7c0 1.7-3.6 3-8 3S4 8.7 4 7zm0 6v4c0 1.7 3.6 3 8 3s8-1.3 8-3v-4c0 1.7-3.6 3-8 3s-8-1.3-8-3z"/></g></svg>`;

export const cacheIcon = new LabIcon({ name: 'nbcache:cache', svgstr: ICON_SVG });

function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className: string,
  text = ''
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  node.className = className;
  node.textContent = text;
  return node;
}

export class CachePanel extends Widget {
  constructor() {
    super();
    this.id = 'nbcache-panel';
    this.addClass('jp-nbcache-panel');
    this.title.icon = cacheIcon;
    this.title.caption = 'nbcache: cached cells';
    const header = element('div', 'jp-nbcache-panel-header');
    header.appendChild(element('h2', 'jp-nbcache-panel-title', 'Cache'));
    const refresh = element('button', 'jp-nbcache-refresh jp-mod-styled', 'Refresh');
    refresh.addEventListener('click', () => this._connection?.refresh());
    header.appendChild(refresh);
    this._auto = element('div', 'jp-nbcache-auto-note');
    this._totals = element('div', 'jp-nbcache-totals');
    this._list = element('ul', 'jp-nbcache-entries');
    this.node.append(header, this._auto, this._totals, this._list);
    this._render();
  }

  /** The connection of the notebook the panel shows (null: no notebook). */
  get connection(): NbCacheConnection | null {
    return this._connection;
  }

  set connection(connection: NbCacheConnection | null) {
    if (connection === this._connection) {
      return;
    }
    this._connection?.entriesChanged.disconnect(this._render, this);
    this._connection?.autoChanged.disconnect(this._render, this);
    this._connection = connection;
    connection?.entriesChanged.connect(this._render, this);
    connection?.autoChanged.connect(this._render, this);
    if (connection && !connection.entries) {
      connection.refresh();
    }
    this._render();
  }

  protected onAfterShow(): void {
    this._connection?.refresh();
  }

  private _render(): void {
    const entries: IEntriesMessage | null = this._connection?.entries ?? null;
    const note = autoNote(this._connection?.auto ?? null);
    this._auto.textContent = note ?? '';
    this._auto.hidden = note === null;
    this._list.replaceChildren();
    if (!this._connection) {
      this._totals.textContent = 'Open a notebook to see its cache.';
      return;
    }
    if (!entries) {
      this._totals.textContent = 'No nbcache in this kernel yet: run %load_ext nbcache.';
      return;
    }
    const t = entries.totals;
    this._totals.textContent =
      `${t.count} ${t.count === 1 ? 'entry' : 'entries'} · ${formatBytes(t.size)} · ` +
      `${t.hits} ${t.hits === 1 ? 'hit' : 'hits'} · saved ${formatSeconds(t.saved)}` +
      (entries.error ? ` · ${entries.error}` : '');
    for (const entry of entries.entries) {
      const item = element('li', 'jp-nbcache-entry');
      item.dataset.key = entry.key;
      const text = element('div', 'jp-nbcache-entry-text');
      const title = element('div', 'jp-nbcache-entry-title', entryTitle(entry));
      title.title = entry.first_line || entry.key;
      const meta = element(
        'div',
        'jp-nbcache-entry-meta',
        `${formatBytes(entry.size)} · ran ${formatSeconds(entry.runtime)} · ` +
          `${entry.hits} ${entry.hits === 1 ? 'hit' : 'hits'} · saved ${formatSeconds(entry.saved)}`
      );
      text.append(title, meta);
      const button = element('button', 'jp-nbcache-invalidate jp-mod-styled', 'Invalidate');
      button.title = `Delete this entry: the cell runs again next time (${entry.key})`;
      button.addEventListener('click', () => this._connection?.invalidate(entry.key));
      item.append(text, button);
      this._list.appendChild(item);
    }
  }

  private _connection: NbCacheConnection | null = null;
  private _auto: HTMLDivElement;
  private _totals: HTMLDivElement;
  private _list: HTMLUListElement;
}
