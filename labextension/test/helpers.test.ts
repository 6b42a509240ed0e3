import { strict as assert } from 'node:assert';
import { test } from 'node:test';

import {
  autoCode,
  autoNote,
  badgeText,
  badgeTitle,
  entryTitle,
  explanationRows,
  formatBytes,
  formatSeconds,
  IEntry,
  IStatusMessage,
  mayUseNbcache,
  panelPosition,
  parseMessage,
  showsBadge,
  totalsOf
} from '../src/helpers';

function status(overrides: Partial<IStatusMessage> = {}): IStatusMessage {
  return {
    type: 'status',
    cell_id: 'c1',
    status: 'hit',
    saved: 2.5,
    runtime: 0.004,
    original_runtime: 2.504,
    reason: null,
    key: 'abc123',
    names: ['df', 'model'],
    explain: 'same code, same inputs',
    auto: false,
    not_worth: false,
    files: [],
    ...overrides
  };
}

function entry(overrides: Partial<IEntry> = {}): IEntry {
  return {
    key: 'k1',
    label: null,
    cell: 'c1',
    first_line: 'df = load()',
    size: 2048,
    runtime: 3,
    created: 1,
    names: ['df'],
    hits: 2,
    saved: 5.5,
    ...overrides
  };
}

test('formatSeconds picks a readable unit', () => {
  const table: Array<[number, string]> = [
    [0, '0 s'],
    [-1, '0 s'],
    [NaN, '0 s'],
    [0.0000042, '4 µs'],
    [0.0042, '4 ms'],
    [2.54, '2.5 s'],
    [150.4, '150 s'],
    [7200, '2.0 h']
  ];
  for (const [input, expected] of table) {
    assert.equal(formatSeconds(input), expected, `formatSeconds(${input})`);
  }
});

test('formatBytes writes sizes as the kernel does (powers of 1000)', () => {
  // The same cases as nbcache.units.format_size gives (tests/test_units.py).
  assert.equal(formatBytes(0), '0 B');
  assert.equal(formatBytes(999), '999 B');
  assert.equal(formatBytes(1000), '1.0 kB');
  assert.equal(formatBytes(2048), '2.0 kB');
  assert.equal(formatBytes(50 * 1000 * 1000), '50.0 MB');
  assert.equal(formatBytes(1.5e9), '1.5 GB');
  assert.equal(formatBytes(1250), '1.3 kB');
  assert.equal(formatBytes(1050), '1.1 kB');
  assert.equal(formatBytes(2250), '2.3 kB');
  assert.equal(formatBytes(1249999), '1.2 MB');
  assert.equal(formatBytes(5e15), '5000.0 TB');
});

test('parseMessage accepts a status and fills defaults', () => {
  const parsed = parseMessage({ type: 'status', cell_id: 'x', status: 'stored', runtime: 1.5 });
  assert.deepEqual(parsed, {
    type: 'status',
    cell_id: 'x',
    status: 'stored',
    saved: 0,
    runtime: 1.5,
    original_runtime: 0,
    reason: null,
    key: null,
    names: [],
    explain: '',
    auto: false,
    not_worth: false,
    files: []
  });
  const auto = parseMessage({ type: 'status', cell_id: 'x', status: 'hit', auto: true });
  assert.ok(auto && auto.type === 'status' && auto.auto === true);
});

test('parseMessage reads the automatic mode message', () => {
  assert.deepEqual(parseMessage({ type: 'auto', on: true, min_runtime: 0.25 }), { type: 'auto', on: true, min_runtime: 0.25 });
  assert.deepEqual(parseMessage({ type: 'auto', on: false }), { type: 'auto', on: false, min_runtime: null });
  assert.equal(parseMessage({ type: 'auto', on: 'yes' }), null);
});

test('showsBadge: every %%cache run; of automatic runs only hits and stores', () => {
  for (const s of ['hit', 'stored', 'skipped', 'error'] as const) {
    assert.equal(showsBadge(status({ status: s })), true, s);
  }
  assert.equal(showsBadge(status({ status: 'hit', auto: true })), true);
  assert.equal(showsBadge(status({ status: 'stored', auto: true })), true);
  assert.equal(showsBadge(status({ status: 'skipped', auto: true })), false);
  assert.equal(showsBadge(status({ status: 'error', auto: true })), false);
});

test('autoNote says automatic mode is on, with its threshold', () => {
  assert.equal(autoNote(null), null);
  assert.equal(autoNote({ type: 'auto', on: false, min_runtime: 0.25 }), null);
  assert.match(autoNote({ type: 'auto', on: true, min_runtime: 0.25 }) ?? '', /^Automatic caching is on: every cell that runs for at least 250 ms is cached/);
  assert.match(autoNote({ type: 'auto', on: true, min_runtime: 0 }) ?? '', /^Automatic caching is on: every cell is cached/);
});

test('autoCode loads nbcache to turn it on, and turns it off only where it is loaded', () => {
  assert.equal(
    autoCode(true),
    'get_ipython().run_line_magic("load_ext", "nbcache")\nget_ipython().run_line_magic("cache_all", "on")'
  );
  assert.match(autoCode(false), /^if "cache_all" in get_ipython\(\)\.magics_manager\.magics\["line"\]:\n    get_ipython\(\)\.run_line_magic\("cache_all", "off"\)$/);
});

test('parseMessage rejects what it does not understand', () => {
  assert.equal(parseMessage(null), null);
  assert.equal(parseMessage('status'), null);
  assert.equal(parseMessage({ type: 'status', status: 'weird' }), null);
  assert.equal(parseMessage({ type: 'other' }), null);
  assert.equal(parseMessage({ type: 'entries' }), null);
});

test('parseMessage keeps valid entries and recomputes totals', () => {
  const parsed = parseMessage({
    type: 'entries',
    entries: [entry(), { nokey: true }, entry({ key: 'k2', size: 1024, hits: 1, saved: 0.5 })],
    totals: { count: 99, size: 0, hits: 0, saved: 0 }
  });
  assert.ok(parsed && parsed.type === 'entries');
  assert.equal(parsed.entries.length, 2);
  assert.deepEqual(parsed.totals, { count: 2, size: 3072, hits: 3, saved: 6 });
});

test('totalsOf an empty list is zero', () => {
  assert.deepEqual(totalsOf([]), { count: 0, size: 0, hits: 0, saved: 0 });
});

test('badgeText says what happened, with the time saved on a hit', () => {
  assert.equal(badgeText(status()), 'cached · saved 2.5 s');
  assert.equal(badgeText(status({ status: 'stored' })), 'stored');
  assert.equal(badgeText(status({ status: 'skipped', reason: 'x' })), 'not cached');
  assert.equal(badgeText(status({ status: 'error' })), 'error');
});

test('a cell whose restore does not pay says so on its badge, with both times on hover', () => {
  const reason = 'not worth caching: restoring it took 910 ms, running it 810 ms';
  const message = parseMessage({ ...status({ status: 'skipped', reason }), not_worth: true });
  assert.ok(message && message.type === 'status');
  assert.equal(badgeText(message), 'not worth caching');
  assert.equal(badgeTitle(message), `nbcache: ${reason} (click for details)`);
  // any other skip keeps its own words; a missing or odd flag is no verdict
  assert.equal(badgeText(status({ status: 'skipped', reason: 'x' })), 'not cached');
  const odd = parseMessage({ ...status({ status: 'skipped', reason: 'x' }), not_worth: 'yes' });
  assert.ok(odd && odd.type === 'status' && odd.not_worth === false);
});

test('a hit that put files back names them in its title and its rows', () => {
  const message = status({ files: ['out/o.parquet', 'w.txt'] });
  assert.match(badgeTitle(message), /files put back: out\/o\.parquet, w\.txt/);
  assert.equal(new Map(explanationRows(message)).get('Files put back'), 'out/o.parquet, w.txt');
  assert.ok(!badgeTitle(status()).includes('files put back'));
  const parsed = parseMessage({ type: 'status', cell_id: 'x', status: 'hit', files: ['a.txt', 3] });
  assert.ok(parsed && parsed.type === 'status' && parsed.files.length === 1 && parsed.files[0] === 'a.txt');
});

test('badgeTitle gives the reason of a skip', () => {
  const title = badgeTitle(status({ status: 'skipped', reason: "input 'gen' has no fingerprint" }));
  assert.match(title, /not cached: input 'gen' has no fingerprint/);
});

test('explanationRows list saved time, key, restored names and the explanation', () => {
  const rows = new Map(explanationRows(status()));
  assert.equal(rows.get('Status'), 'hit');
  assert.equal(rows.get('Time saved'), '2.5 s');
  assert.equal(rows.get('Key'), 'abc123');
  assert.equal(rows.get('Restored'), 'df, model');
  assert.equal(rows.get('Explanation'), 'same code, same inputs');
  const skipped = new Map(explanationRows(status({ status: 'skipped', reason: '--skip was given', names: [], key: null })));
  assert.equal(skipped.get('Reason'), '--skip was given');
  assert.equal(skipped.has('Key'), false);
  assert.equal(skipped.has('Time saved'), false);
});

test('entryTitle prefers the label, then the first line', () => {
  assert.equal(entryTitle(entry({ label: 'training' })), 'training');
  assert.equal(entryTitle(entry()), 'df = load()');
  assert.equal(entryTitle(entry({ first_line: '', cell: '' })), 'k1');
});

test('panelPosition defaults to the right', () => {
  assert.equal(panelPosition('left'), 'left');
  assert.equal(panelPosition('right'), 'right');
  assert.equal(panelPosition(undefined), 'right');
  assert.equal(panelPosition('top'), 'right');
});

test('mayUseNbcache spots cells worth another comm attempt', () => {
  assert.equal(mayUseNbcache('%load_ext nbcache'), true);
  assert.equal(mayUseNbcache('import nbcache\nnbcache.stats()'), true);
  assert.equal(mayUseNbcache('%%cache --name x\ny = 1'), true);
  assert.equal(mayUseNbcache('x = 1\nprint(x)'), false);
  assert.equal(mayUseNbcache('%%capture\nx = 1'), false);
});
