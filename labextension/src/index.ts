import { JupyterFrontEndPlugin } from '@jupyterlab/application';

import { autoTogglePlugin, badgesPlugin, connectionsPlugin, panelPlugin } from './plugins';

const plugins: JupyterFrontEndPlugin<any>[] = [connectionsPlugin, badgesPlugin, panelPlugin, autoTogglePlugin];

export default plugins;
