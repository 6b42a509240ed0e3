/**
 * The nbcache comm protocol and pure formatting helpers (no JupyterLab imports: unit-tested with
 * node's test runner).
 */

export type CacheStatus = 'hit' | 'stored' | 'skipped' | 'error';

export const STATUSES: readonly CacheStatus[] = ['hit', 'stored', 'skipped', 'error'];

/** Kernel -> frontend after every `%%cache` run, and every cell automatic mode ran through the cache. */
export interface IStatusMessage {
  type: 'status';
  cell_id: string | null;
  status: CacheStatus;
  saved: number;
  runtime: number;
  original_runtime: number;
  reason: string | null;
  key: string | null;
  names: string[];
  explain: string;
  /** Whether automatic mode (`%cache_all`) ran the cell, rather than `%%cache`. */
  auto: boolean;
  /** The cell ran without the cache because restoring it does not pay. */
  not_worth: boolean;
  /** Files a hit wrote or removed to leave the disk as the run did. */
  files: string[];
}

/** Kernel -> frontend when a comm opens and whenever automatic mode is turned on or off. */
export interface IAutoMessage {
  type: 'auto';
  on: boolean;
  min_runtime: number | null;
}

export interface IEntry {
  key: string;
  label: string | null;
  cell: string;
  first_line: string;
  size: number;
  runtime: number;
  created: number;
  names: string[];
  hits: number;
  saved: number;
}

export interface ITotals {
  count: number;
  size: number;
  hits: number;
  saved: number;
}

/** Kernel -> frontend on request or after the cache changed. */
export interface IEntriesMessage {
  type: 'entries';
  entries: IEntry[];
  totals: ITotals;
  error?: string;
}

export type KernelMessage = IStatusMessage | IEntriesMessage | IAutoMessage;

/** Frontend -> kernel. */
export type FrontendMessage =
  | { type: 'refresh' }
  | { type: 'invalidate'; key: string }
  | { type: 'auto'; on: boolean };

function num(value: unknown): number {
  return typeof value === 'number' && isFinite(value) ? value : 0;
}

function str(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

/** A message from the kernel, checked field by field; null for anything we do not understand. */
export function parseMessage(data: unknown): KernelMessage | null {
  if (typeof data !== 'object' || data === null) {
    return null;
  }
  const raw = data as Record<string, unknown>;
  if (raw.type === 'status') {
    const status = raw.status as CacheStatus;
    if (!STATUSES.includes(status)) {
      return null;
    }
    return {
      type: 'status',
      cell_id: str(raw.cell_id),
      status,
      saved: num(raw.saved),
      runtime: num(raw.runtime),
      original_runtime: num(raw.original_runtime),
      reason: str(raw.reason),
      key: str(raw.key),
      names: strings(raw.names),
      explain: str(raw.explain) ?? '',
      auto: raw.auto === true,
      not_worth: raw.not_worth === true,
      files: strings(raw.files)
    };
  }
  if (raw.type === 'auto' && typeof raw.on === 'boolean') {
    return { type: 'auto', on: raw.on, min_runtime: typeof raw.min_runtime === 'number' ? raw.min_runtime : null };
  }
  if (raw.type === 'entries' && Array.isArray(raw.entries)) {
    const entries: IEntry[] = raw.entries
      .filter((e): e is Record<string, unknown> => typeof e === 'object' && e !== null && typeof (e as any).key === 'string')
      .map(e => ({
        key: e.key as string,
        label: str(e.label),
        cell: str(e.cell) ?? '',
        first_line: str(e.first_line) ?? '',
        size: num(e.size),
        runtime: num(e.runtime),
        created: num(e.created),
        names: strings(e.names),
        hits: num(e.hits),
        saved: num(e.saved)
      }));
    const message: IEntriesMessage = { type: 'entries', entries, totals: totalsOf(entries) };
    const error = str(raw.error);
    if (error) {
      message.error = error;
    }
    return message;
  }
  return null;
}

/** Totals recomputed from the rows, so they always agree with what the panel lists. */
export function totalsOf(entries: IEntry[]): ITotals {
  return entries.reduce(
    (acc, e) => ({
      count: acc.count + 1,
      size: acc.size + e.size,
      hits: acc.hits + e.hits,
      saved: acc.saved + e.saved
    }),
    { count: 0, size: 0, hits: 0, saved: 0 }
  );
}

export function formatSeconds(seconds: number): string {
  if (!(seconds > 0)) {
    return '0 s';
  }
  if (seconds >= 3600) {
    return `${(seconds / 3600).toFixed(1)} h`;
  }
  if (seconds >= 100) {
    return `${Math.round(seconds)} s`;
  }
  if (seconds >= 1) {
    return `${seconds.toFixed(1)} s`;
  }
  if (seconds >= 0.001) {
    return `${Math.round(seconds * 1000)} ms`;
  }
  return `${Math.round(seconds * 1e6)} µs`;
}

/** Bytes in powers of 1000, as sizes are written (`10GB`): the same text as the kernel's
 * `nbcache.units.format_size`, so the panel, the dashboard and the CLI agree. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let scale = 1;
  let unit = 0;
  while (unit < units.length - 1 && Math.abs(bytes) >= 1000 * scale) {
    scale *= 1000;
    unit++;
  }
  if (unit === 0) {
    return `${bytes.toFixed(0)} B`;
  }
  // Tenths of the exact quotient, halves rounded up (integer arithmetic: exact for any size below
  // 900 TB), as the kernel's format_size does: toFixed and Python's float formatting disagree on
  // exact halves, so neither side uses its own.
  const magnitude = Math.abs(bytes) * 10;
  const whole = Math.floor(magnitude / scale);
  const tenths = whole + (2 * (magnitude - whole * scale) >= scale ? 1 : 0);
  return `${bytes < 0 ? '-' : ''}${Math.floor(tenths / 10)}.${tenths % 10} ${units[unit]}`;
}

/** The short text on a cell's badge. */
export function badgeText(message: IStatusMessage): string {
  switch (message.status) {
    case 'hit':
      return `cached · saved ${formatSeconds(message.saved)}`;
    case 'stored':
      return 'stored';
    case 'skipped':
      return message.not_worth ? 'not worth caching' : 'not cached';
    case 'error':
      return 'error';
  }
}

/** The badge's tooltip: one line with the reason when there is one. */
export function badgeTitle(message: IStatusMessage): string {
  const head = {
    hit:
      `nbcache: restored from the cache, saved ${formatSeconds(message.saved)}` +
      (message.files.length ? `; files put back: ${message.files.join(', ')}` : ''),
    stored: `nbcache: no stored result matched; ran in ${formatSeconds(message.runtime)} and stored`,
    skipped: message.not_worth
      ? `nbcache: ${message.reason ?? 'not worth caching'}`
      : `nbcache: not cached: ${message.reason ?? 'no reason given'}`,
    error: `nbcache: the cell raised ${message.reason ?? 'an error'}`
  }[message.status];
  return `${head} (click for details)`;
}

/** The rows of the explanation shown when a badge is clicked. */
export function explanationRows(message: IStatusMessage): Array<[string, string]> {
  const rows: Array<[string, string]> = [['Status', message.not_worth ? 'not worth caching' : message.status]];
  if (message.status === 'hit') {
    rows.push(['Time saved', formatSeconds(message.saved)]);
    rows.push(['Original run', formatSeconds(message.original_runtime)]);
    rows.push(['Restored in', formatSeconds(message.runtime)]);
  } else {
    rows.push(['Run time', formatSeconds(message.runtime)]);
  }
  if (message.reason) {
    rows.push(['Reason', message.reason]);
  }
  if (message.key) {
    rows.push(['Key', message.key]);
  }
  if (message.names.length) {
    rows.push([message.status === 'hit' ? 'Restored' : 'Stored', message.names.join(', ')]);
  }
  if (message.files.length) {
    rows.push(['Files put back', message.files.join(', ')]);
  }
  if (message.explain) {
    rows.push(['Explanation', message.explain]);
  }
  return rows;
}

/** What the panel calls an entry: its label, else the cell's first line, else the key. */
export function entryTitle(entry: IEntry): string {
  return entry.label || entry.first_line || entry.cell || entry.key.slice(0, 12);
}

export type PanelPosition = 'left' | 'right';

export function panelPosition(value: unknown): PanelPosition {
  return value === 'left' ? 'left' : 'right';
}

/**
 * Whether an executed cell may have loaded nbcache (or used it), so that opening the comm is worth
 * another try: `%load_ext nbcache`, `import nbcache`, any `%%cache` cell. A kernel that loads
 * nbcache at start (ipython_config.py) is found by the attempt made when the kernel is ready.
 */
export function mayUseNbcache(source: string): boolean {
  return /nbcache|%%cache\b/.test(source);
}

/**
 * Whether a status gets a badge: every `%%cache` run does; of the cells automatic mode ran, those
 * it stored or replayed (a cell it did not store just ran, as without nbcache, and an error shows
 * its traceback anyway).
 */
export function showsBadge(message: IStatusMessage): boolean {
  return !message.auto || message.status === 'hit' || message.status === 'stored';
}

/** The panel's line about automatic mode; null when it is off. */
export function autoNote(auto: IAutoMessage | null): string | null {
  if (!auto || !auto.on) {
    return null;
  }
  const threshold = auto.min_runtime ? ` that runs for at least ${formatSeconds(auto.min_runtime)}` : '';
  return `Automatic caching is on: every cell${threshold} is cached (the toolbar toggle or %cache_all off turns it off).`;
}

/**
 * The code the toolbar toggle runs in the kernel (silently: no execution count, no output), which
 * also works before `%load_ext nbcache` and in a kernel just restarted.
 */
export function autoCode(on: boolean): string {
  const load = on ? 'get_ipython().run_line_magic("load_ext", "nbcache")\n' : '';
  const guard = on ? '' : 'if "cache_all" in get_ipython().magics_manager.magics["line"]:\n    ';
  return `${load}${guard}get_ipython().run_line_magic("cache_all", "${on ? 'on' : 'off'}")`;
}
