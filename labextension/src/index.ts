import { JupyterFrontEndPlugin } from '@jupyterlab/application';

import { badgesPlugin, connectionsPlugin, panelPlugin } from './plugins';

const plugins: JupyterFrontEndPlugin<any>[] = [connectionsPlugin, badgesPlugin, panelPlugin];

export default plugins;
