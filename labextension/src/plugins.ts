/**
 * The four plugins: the kernel connections, the cell badges, the cache panel and the toolbar
 * toggle for automatic mode.
 */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { INotebookTracker, NotebookActions, NotebookPanel } from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';

import { NotebookBadges } from './badges';
import { NbCacheConnections } from './connection';
import { mayUseNbcache, panelPosition } from './helpers';
import { CachePanel } from './panel';
import { AutoToggle } from './toggle';
import { INbCacheConnections } from './tokens';

export const connectionsPlugin: JupyterFrontEndPlugin<NbCacheConnections> = {
  id: 'nbcache:connections',
  description: 'Links each notebook to the nbcache comm in its kernel.',
  autoStart: true,
  requires: [INotebookTracker],
  provides: INbCacheConnections,
  activate: (_app: JupyterFrontEnd, tracker: INotebookTracker) => {
    const connections = new NbCacheConnections();
    const track = (panel: NotebookPanel) => {
      connections.getOrCreate(panel, panel.sessionContext);
      panel.disposed.connect(() => connections.delete(panel));
    };
    tracker.forEach(track);
    tracker.widgetAdded.connect((_, panel) => track(panel));
    // The kernel may load nbcache in any cell: until it answers, try again after each execution
    // of a cell that may have loaded or used it (a no-op once connected).
    NotebookActions.executed.connect((_, { notebook, cell }) => {
      const panel = tracker.find(p => p.content === notebook);
      const connection = panel ? connections.get(panel) : undefined;
      if (connection && !connection.connected && mayUseNbcache(cell.model.sharedModel.getSource())) {
        connection.connect();
      }
    });
    return connections;
  }
};

export const badgesPlugin: JupyterFrontEndPlugin<void> = {
  id: 'nbcache:badges',
  description: 'A badge on each cell that ran under %%cache.',
  autoStart: true,
  requires: [INotebookTracker, INbCacheConnections],
  optional: [ISettingRegistry],
  activate: (
    _app: JupyterFrontEnd,
    tracker: INotebookTracker,
    connections: NbCacheConnections,
    settings: ISettingRegistry | null
  ) => {
    const attach = (panel: NotebookPanel) => {
      new NotebookBadges(panel, connections.getOrCreate(panel, panel.sessionContext));
    };
    tracker.forEach(attach);
    tracker.widgetAdded.connect((_, panel) => attach(panel));
    const apply = (show: boolean) => {
      document.body.dataset.nbcacheBadges = show ? 'shown' : 'hidden';
    };
    apply(true);
    if (settings) {
      void settings.load(badgesPlugin.id).then(loaded => {
        const update = () => apply(loaded.get('showBadges').composite !== false);
        update();
        loaded.changed.connect(update);
      });
    }
  }
};

export const panelPlugin: JupyterFrontEndPlugin<void> = {
  id: 'nbcache:panel',
  description: 'A side panel listing the kernel cache entries.',
  autoStart: true,
  requires: [INotebookTracker, INbCacheConnections],
  optional: [ISettingRegistry],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    connections: NbCacheConnections,
    settings: ISettingRegistry | null
  ) => {
    const panel = new CachePanel();
    const place = (position: unknown) => {
      app.shell.add(panel, panelPosition(position), { rank: 700 });
    };
    const follow = () => {
      const current = tracker.currentWidget;
      panel.connection = current ? connections.getOrCreate(current, current.sessionContext) : null;
    };
    tracker.currentChanged.connect(follow);
    follow();
    if (settings) {
      void settings
        .load(panelPlugin.id)
        .then(loaded => {
          place(loaded.get('position').composite);
          loaded.changed.connect(() => place(loaded.get('position').composite));
        })
        .catch(() => place('right'));
    } else {
      place('right');
    }
  }
};

export const autoTogglePlugin: JupyterFrontEndPlugin<void> = {
  id: 'nbcache:auto-toggle',
  description: 'A notebook toolbar toggle for automatic caching of every cell (%cache_all).',
  autoStart: true,
  requires: [INbCacheConnections],
  activate: (app: JupyterFrontEnd, connections: NbCacheConnections) => {
    // A widget extension: JupyterLab adds it to every notebook panel it opens.
    app.docRegistry.addWidgetExtension('Notebook', {
      createNew: (panel: NotebookPanel) => {
        const toggle = new AutoToggle(connections.getOrCreate(panel, panel.sessionContext));
        if (!panel.toolbar.insertAfter('cellType', 'nbcache-auto', toggle)) {
          panel.toolbar.insertItem(10, 'nbcache-auto', toggle);
        }
        return toggle;
      }
    });
  }
};
