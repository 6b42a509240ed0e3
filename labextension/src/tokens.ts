import { Token } from '@lumino/coreutils';

import { NbCacheConnections } from './connection';

/** The connection of each open notebook to nbcache in its kernel. */
export const INbCacheConnections = new Token<NbCacheConnections>(
  'nbcache:INbCacheConnections',
  'The link of each notebook to the nbcache comm in its kernel.'
);
