/**
 * The notebook toolbar's toggle for automatic mode (`%cache_all`): pressed while the kernel caches
 * every cell; a click turns it on or off for the notebook's kernel.
 */
import { ToolbarButton } from '@jupyterlab/ui-components';

import { NbCacheConnection } from './connection';
import { cacheIcon } from './panel';

/** On the button; the toolbar item around it carries `data-nbcache-auto` (on, off). */
export const TOGGLE_CLASS = 'jp-nbcache-auto-toggle';
export const ITEM_CLASS = 'jp-nbcache-auto-item';

export class AutoToggle extends ToolbarButton {
  constructor(readonly connection: NbCacheConnection) {
    super({
      icon: cacheIcon,
      label: 'Cache all',
      className: TOGGLE_CLASS,
      tooltip: 'nbcache: cache every cell automatically (%cache_all)',
      pressedTooltip: 'nbcache: automatic caching is on; click to stop caching every cell',
      onClick: () => connection.setAuto(!connection.autoOn)
    });
    this.addClass(ITEM_CLASS);
    connection.autoChanged.connect(this._update, this);
    this._update();
  }

  dispose(): void {
    this.connection.autoChanged.disconnect(this._update, this);
    super.dispose();
  }

  private _update(): void {
    const on = this.connection.autoOn;
    this.pressed = on;
    this.node.dataset.nbcacheAuto = on ? 'on' : 'off';
  }
}
