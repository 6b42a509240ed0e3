"""Table-driven scenarios through real kernels: a hit is indistinguishable from running the cell.

Every scenario runs with ``%%cache`` in a fresh kernel (phase 1: fills the cache), then again in
a fresh kernel with its change applied, if any (phase 2), and the phase-2 notebook runs once more
with every ``%%cache`` line removed and nbcache not loaded (plain). The test asserts, for each
scenario:

- phase 1 restored nothing (its cache started empty);
- in phase 2, each cached cell hit or missed as the scenario expects (a miss has no hit note);
- every cell of phase 2 showed exactly what the plain run showed (nbcache's notes aside), so
  whatever a probe cell prints about the state left behind (values, identities, ``_``, random
  draws, options, environment, working directory) is what running the cell would have left;
- the plain run itself raised nothing (a scenario that errors proves nothing).

See ``scenarios_harness.py`` for how scenarios are batched into few kernels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

from conftest import comparable, slow_to_restore
from scenarios_harness import Scenario, ScenarioResult, dedent as d, errors, nbcache_lines, run_scenarios, status, stderr_lines, sub

S: list[Scenario] = []


def scenario(**kwargs) -> Scenario:
    s = Scenario(**kwargs)
    S.append(s)
    return s


# == inputs ======================================================================================
_threshold = [
    "threshold = 3",
    d("""
    %%cache
    above = [x for x in range(10) if x > threshold]
    print(above)
    """),
    "print(above, threshold)",
]
scenario(name="input_value_change_misses", cells=_threshold, cells2=sub(_threshold, "threshold = 3", "threshold = 5"), expect="miss")
scenario(name="nothing_changed_hits", cells=_threshold)

_commented = [
    "k = 4",
    d("""
    %%cache
    # square it
    sq = k ** 2  # the square
    print(sq)
    """),
    "print(sq)",
]
scenario(name="comment_only_edit_hits", cells=_commented, cells2=sub(_commented, "# the square", "# k squared, explained at length"))
scenario(
    name="whitespace_edit_hits",
    cells=_commented,
    cells2=sub(_commented, "sq = k ** 2  # the square\nprint(sq)", "sq = k**2  # the square\n\n\nprint( sq )\n\n"),
)

_arr = [
    "import numpy as np\narr = np.arange(10.0)\narr[3] = 7.0",
    d("""
    %%cache
    total = float((arr * 2).sum())
    print(total)
    """),
    "print(total, arr.tolist())",
]
scenario(name="numpy_element_change_misses", cells=_arr, cells2=sub(_arr, "arr[3] = 7.0", "arr[3] = 7.5"), expect="miss")

_df = [
    'import pandas as pd\ndf = pd.DataFrame({"a": [1, 2, 3], "b": [4, 5, 6]}, index=["x", "y", "z"])',
    d("""
    %%cache
    summary = f"{list(df.index)} {list(df.columns)} {[str(t) for t in df.dtypes]} {df.values.tolist()}"
    print(summary)
    """),
    "print(summary)",
]
scenario(name="dataframe_value_change_misses", cells=_df, cells2=sub(_df, '"b": [4, 5, 6]', '"b": [4, 5, 7]'), expect="miss")
scenario(name="dataframe_index_change_misses", cells=_df, cells2=sub(_df, '"y", "z"]', '"y", "w"]'), expect="miss")
scenario(name="dataframe_column_name_change_misses", cells=_df, cells2=sub(_df, '"b": [4', '"c": [4'), expect="miss")
scenario(
    name="dataframe_dtype_change_misses",
    cells=_df,
    cells2=sub(_df, 'index=["x", "y", "z"])', 'index=["x", "y", "z"])\ndf["b"] = df["b"].astype("float64")'),
    expect="miss",
)

_order = [
    'cfg = {"a": 1, "b": 2}',
    d("""
    %%cache
    keys = list(cfg)
    print(keys)
    """),
    "print(keys, cfg)",
]
scenario(name="dict_insertion_order_misses", cells=_order, cells2=sub(_order, '{"a": 1, "b": 2}', '{"b": 2, "a": 1}'), expect="miss")

scenario(
    name="numpy_module_input_hits",
    cells=[
        "import numpy as np",
        d("""
        %%cache
        zeros = np.zeros(3).tolist()
        print(zeros)
        """),
        "print(zeros, np.__name__)",
    ],
)

_chain = [
    "n = 3",
    "%%cache\nbase_list = list(range(n))\nprint(base_list)\n",
    "%%cache\ndoubled = [2 * v for v in base_list]\nprint(doubled)\n",
    "print(base_list, doubled)",
]
scenario(name="change_propagates_through_cached_chain", cells=_chain, cells2=sub(_chain, "n = 3", "n = 4"), expect="miss")

# == code reached ================================================================================
_helper = [
    "def scale(x):\n    return x * 2\n",
    "%%cache\nscaled = scale(10)\nprint(scaled)\n",
    "%%cache\nunrelated = 5 + 1\nprint(unrelated)\n",
    "print(scaled, unrelated)",
]
scenario(
    name="helper_edit_misses_only_callers",
    cells=_helper,
    cells2=sub(_helper, "return x * 2", "return x * 3"),
    expect=["miss", "hit"],
)

_nested = [
    "def inner(x):\n    return x + 1\n",
    "def outer(x):\n    return inner(x) * 10\n",
    "%%cache\nnested = outer(1)\nprint(nested)\n",
    "print(nested)",
]
scenario(name="helper_calling_helper_edit_misses", cells=_nested, cells2=sub(_nested, "return x + 1", "return x + 2"), expect="miss")

_const = [
    "FACTOR = 2",
    "def times(x):\n    return x * FACTOR\n",
    "%%cache\nproduct = times(21)\nprint(product)\n",
    "print(product)",
]
scenario(name="global_constant_read_by_helper_misses", cells=_const, cells2=sub(_const, "FACTOR = 2", "FACTOR = 3"), expect="miss")

_defaults = [
    "def power(x, k=2):\n    return x ** k\n",
    "%%cache\npowered = power(3)\nprint(powered)\n",
    "print(powered)",
]
scenario(name="default_argument_change_misses", cells=_defaults, cells2=sub(_defaults, "k=2", "k=3"), expect="miss")

_deco = [
    d("""
    import functools
    def bump(fn):
        @functools.wraps(fn)
        def wrapper(*args):
            return fn(*args) + 1
        return wrapper
    """),
    "@bump\ndef ident(x):\n    return x\n",
    "%%cache\ndecorated = ident(41)\nprint(decorated)\n",
    "print(decorated, ident.__name__)",
]
scenario(name="decorator_edit_misses", cells=_deco, cells2=sub(_deco, "fn(*args) + 1", "fn(*args) + 100"), expect="miss")

_partial = [
    "import functools\nsquare = functools.partial(pow, exp=2)",
    "%%cache\npartial_result = square(7)\nprint(partial_result)\n",
    "print(partial_result)",
]
scenario(name="functools_partial_change_misses", cells=_partial, cells2=sub(_partial, "exp=2", "exp=3"), expect="miss")

_lambda = [
    "shift = lambda x: x + 1",
    "%%cache\nshifted = [shift(v) for v in range(3)]\nprint(shifted)\n",
    "print(shifted)",
]
scenario(name="lambda_edit_misses", cells=_lambda, cells2=sub(_lambda, "x + 1", "x - 1"), expect="miss")

_closure = [
    "def make_mul(m):\n    def mul(x):\n        return x * m\n    return mul\n",
    "triple = make_mul(3)",
    "%%cache\nclosed = triple(5)\nprint(closed)\n",
    "print(closed)",
]
scenario(name="closure_value_change_misses", cells=_closure, cells2=sub(_closure, "make_mul(3)", "make_mul(4)"), expect="miss")

_method = [
    "class Greeter:\n    def greet(self):\n        return 'hello'\n\ngreeter = Greeter()\n",
    "%%cache\ngreeting = greeter.greet().upper()\nprint(greeting)\n",
    "print(greeting)",
]
scenario(name="class_method_edit_misses", cells=_method, cells2=sub(_method, "'hello'", "'bonjour'"), expect="miss")

# == local modules ===============================================================================
_mod_cells = ["%%cache\nimport helpers\nmod_value = helpers.compute(5)\nprint(mod_value)\n", "print(mod_value, helpers.compute(1))"]
_mod_files = {
    "helpers.py": "from util import base\n\ndef compute(x):\n    return x * 10 + base()\n",
    "util.py": "def base():\n    return 1\n",
}
scenario(name="local_module_unchanged_hits", cells=_mod_cells, files=_mod_files, isolate=True)
scenario(
    name="local_module_edit_misses",
    cells=_mod_cells,
    files=_mod_files,
    files2={"helpers.py": "from util import base\n\ndef compute(x):\n    return x * 20 + base()\n"},
    expect="miss",
    isolate=True,
)
scenario(
    name="transitive_local_module_edit_misses",
    cells=_mod_cells,
    files=_mod_files,
    files2={"util.py": "def base():\n    return 2\n"},
    expect="miss",
    isolate=True,
)

# == files =======================================================================================
_csv_cells = [
    d("""
    %%cache
    import pandas as pd
    table = pd.read_csv("data.csv")
    print(table["v"].sum())
    """),
    "print(table.to_dict())",
]
_csv = {"data.csv": "k,v\na,1\nb,2\n"}
scenario(name="csv_content_change_misses", cells=_csv_cells, files=_csv, files2={"data.csv": "k,v\na,1\nb,3\n"}, expect="miss")
scenario(name="csv_rewritten_same_content_hits", cells=_csv_cells, files=_csv, files2=dict(_csv))
scenario(
    name="open_read_text_change_misses",
    cells=['%%cache\nwith open("config.txt") as fh:\n    config_text = fh.read().strip()\nprint(config_text)\n', "print(config_text)"],
    files={"config.txt": "alpha"},
    files2={"config.txt": "beta"},
    expect="miss",
)
scenario(
    name="deps_folder_new_file_misses",
    cells=["%%cache --deps data/\nimport os\nlisting = sorted(os.listdir('data'))\nprint(listing)\n", "print(listing)"],
    files={"data/a.txt": "a", "data/b.txt": "b"},
    files2={"data/c.txt": "c"},
    expect="miss",
)


# == files read by native code and files written =================================================
# Scenario files are text: an uncached setup cell makes the binary inputs from them, in every
# phase (in phase 2 it rewrites them: a new mtime, the same bytes unless files2 changed the text).
def _stored(r: ScenarioResult) -> None:
    """Phase 1 stored the cached cell (else a miss in phase 2 proves nothing)."""
    for i in r.scenario.cached([c.source for c in r.first]):
        refused = [line for line in nbcache_lines(r.first[i]) if "not cached" in line]
        assert not refused, refused


def reads(name: str, cells: list[str], files: dict[str, str], files2: dict[str, str | None], probe: str) -> None:
    """Two scenarios: ``cells`` (then ``probe``) hit when the text files are rewritten unchanged,
    and miss when ``files2`` changes the data the cached cell reads (phase 1 stored the cell)."""
    scenario(name=f"reads_{name}_unchanged_hits", cells=[*cells, probe], files=files, files2=dict(files), check=_stored)
    scenario(name=f"reads_{name}_changed_misses", cells=[*cells, probe], files=files, files2=files2, expect="miss", check=_stored)


_d_csv = {"d.csv": "a,b\n1,x\n2,y\n"}
_d_csv2 = {"d.csv": "a,b\n1,x\n5,y\n"}  # same size: the bytes differ, not the stamps alone
_to_parquet = "import pandas as pd\npd.read_csv('d.csv').to_parquet('d.parquet')"
_parts = {"src/p0.csv": "a\n1\n2\n", "src/p1.csv": "a\n3\n"}
_parts_setup = d("""
    import glob, os
    import pandas as pd
    os.makedirs('{folder}', exist_ok=True)
    for src in sorted(glob.glob('src/*.csv')):
        pd.read_csv(src).to_parquet('{folder}/' + os.path.basename(src)[:-4] + '.parquet')
    """)
_to_png = d("""
    import pandas as pd
    from PIL import Image
    Image.fromarray(pd.read_csv('d.csv')['a'].to_numpy().astype('uint8').reshape(1, -1)).save('img.png')
    """)
reads(
    "pandas_read_parquet",
    [_to_parquet, "%%cache\ndf = pd.read_parquet('d.parquet', engine='pyarrow')\nprint(df['a'].sum())"],
    _d_csv, _d_csv2, "print(df.to_dict('list'))",
)
reads(
    "pandas_read_feather",
    ["import pandas as pd\npd.read_csv('d.csv').to_feather('d.feather')", "%%cache\ndf = pd.read_feather('d.feather')\nprint(df['a'].sum())"],
    _d_csv, _d_csv2, "print(df.to_dict('list'))",
)
reads(
    "pandas_read_orc",
    ["import pandas as pd\npd.read_csv('d.csv').to_orc('d.orc')", "%%cache\ndf = pd.read_orc('d.orc')\nprint(df['a'].sum())"],
    _d_csv, _d_csv2, "print(df.to_dict('list'))",
)
reads(
    "pyarrow_read_table",
    [_to_parquet, "%%cache\nimport pyarrow.parquet as pq\ntable = pq.read_table('d.parquet')\nprint(table.column('a').to_pylist())"],
    _d_csv, _d_csv2, "print(table.num_rows, table.column_names)",
)
reads(
    "pyarrow_dataset_folder",
    [
        _parts_setup.format(folder="parts"),
        "%%cache\nimport pyarrow.dataset as ds\nparts = ds.dataset('parts/', format='parquet').to_table()\nprint(sorted(parts.column('a').to_pylist()))",
    ],
    _parts, {"src/p2.csv": "a\n4\n"}, "print(parts.num_rows)",  # the change: a new part file
)
reads(
    "polars_read_csv",
    ["%%cache\nimport polars as pl\nframe = pl.read_csv('d.csv')\nprint(frame['a'].sum())"],
    _d_csv, _d_csv2, "print(frame.to_dict(as_series=False))",
)
reads(
    "polars_scan_parquet",
    [_to_parquet, "%%cache\nimport polars as pl\nlazy_sum = pl.scan_parquet('d.parquet').select(pl.col('a').sum()).collect().item()\nprint(lazy_sum)"],
    _d_csv, _d_csv2, "print(lazy_sum)",
)
reads(
    "duckdb_parquet",
    [
        "import pandas as pd\npd.read_csv('d.csv').to_parquet('q.parquet')",
        "%%cache\nimport duckdb\nrows = duckdb.sql(\"select sum(a) from 'q.parquet'\").fetchall()\nprint(rows)",
    ],
    _d_csv, _d_csv2, "print(rows)",
)
reads(
    "duckdb_glob",
    [
        _parts_setup.format(folder="data"),
        "%%cache\nimport duckdb\nrows = duckdb.sql(\"select sum(a), count(*) from 'data/*.parquet'\").fetchall()\nprint(rows)",
    ],
    _parts, {"src/p2.csv": "a\n4\n"}, "print(rows)",  # the change: a new file matching the glob
)
reads(
    "duckdb_read_csv_auto",
    ["%%cache\nimport duckdb\nrows = duckdb.sql(\"select sum(a) from read_csv_auto('x.csv')\").fetchall()\nprint(rows)"],
    {"x.csv": "a,b\n1,x\n2,y\n"}, {"x.csv": "a,b\n1,x\n5,y\n"}, "print(rows)",
)
reads(
    "h5py_file",
    [
        d("""
        import h5py
        import pandas as pd
        with h5py.File('d.h5', 'w') as out:
            out.create_dataset('a', data=pd.read_csv('d.csv')['a'].to_numpy(), track_times=False)
        """),
        "%%cache\nimport h5py\nwith h5py.File('d.h5', 'r') as h5:\n    h5_values = h5['a'][:].tolist()\nprint(h5_values)",
    ],
    _d_csv, _d_csv2, "print(h5_values)",
)
reads(
    "h5py_file_handle_deleted",  # the same without the closed File left bound (h5py refuses pickling)
    [
        d("""
        import h5py
        import pandas as pd
        with h5py.File('d.h5', 'w') as out:
            out.create_dataset('a', data=pd.read_csv('d.csv')['a'].to_numpy(), track_times=False)
        """),
        "%%cache\nimport h5py\nwith h5py.File('d.h5', 'r') as h5:\n    h5_values = h5['a'][:].tolist()\ndel h5\nprint(h5_values)",
    ],
    _d_csv, _d_csv2, "print(h5_values)",
)
reads(
    "numpy_load_mmap",
    [
        "import numpy as np, pandas as pd\nnp.save('a.npy', pd.read_csv('d.csv')['a'].to_numpy())",
        "%%cache\nimport numpy as np\nmapped = np.load('a.npy', mmap_mode='r')\nnpy_total = int(mapped.sum())\nprint(npy_total)",
    ],
    _d_csv, _d_csv2, "print(npy_total, mapped.tolist())",
)
reads(
    "numpy_memmap",
    [
        "import numpy as np, pandas as pd\nnp.asarray(pd.read_csv('d.csv')['a'], dtype='float64').tofile('a.bin')",
        "%%cache\nimport numpy as np\nraw = np.memmap('a.bin', dtype='float64', mode='r')\nraw_total = float(raw.sum())\nprint(raw_total)",
    ],
    _d_csv, _d_csv2, "print(raw_total, raw.tolist())",
)
reads(
    "sqlite_read_sql",
    [
        d("""
        import os, sqlite3
        import pandas as pd
        if os.path.exists('db.sqlite'):
            os.remove('db.sqlite')
        setup_con = sqlite3.connect('db.sqlite')
        pd.read_csv('d.csv').to_sql('t', setup_con, index=False)
        setup_con.close()
        """),
        d("""
        %%cache
        import sqlite3
        import pandas as pd
        con = sqlite3.connect('db.sqlite')
        sums = pd.read_sql('select sum(a) as s, count(*) as n from t', con)
        con.close()
        print(sums.to_dict('list'))
        """),
    ],
    _d_csv, _d_csv2, "print(sums.to_dict('list'))",
)
reads(
    "sqlite_read_sql_connection_deleted",  # the same without the closed Connection left bound
    [
        d("""
        import os, sqlite3
        import pandas as pd
        if os.path.exists('db.sqlite'):
            os.remove('db.sqlite')
        setup_con = sqlite3.connect('db.sqlite')
        pd.read_csv('d.csv').to_sql('t', setup_con, index=False)
        setup_con.close()
        """),
        d("""
        %%cache
        import sqlite3
        import pandas as pd
        con = sqlite3.connect('db.sqlite')
        sums = pd.read_sql('select sum(a) as s, count(*) as n from t', con)
        con.close()
        del con
        print(sums.to_dict('list'))
        """),
    ],
    _d_csv, _d_csv2, "print(sums.to_dict('list'))",
)
reads(
    "pil_image_open",
    [_to_png, "%%cache\nfrom PIL import Image\nim = Image.open('img.png')\npixels = list(im.tobytes())\nprint(im.size, pixels)"],
    _d_csv, _d_csv2, "print(pixels)",
)
reads(
    "imageio_imread",
    [_to_png, "%%cache\nimport imageio.v3 as iio\nimg = iio.imread('img.png')\nprint(img.shape, img.ravel().tolist())"],
    _d_csv, _d_csv2, "print(img.tolist())",
)
reads(
    "path_in_a_variable",
    [_to_parquet, "path = 'd.parquet'", "%%cache\ndf = pd.read_parquet(path)\nprint(df['a'].sum())"],
    _d_csv, _d_csv2, "print(df.to_dict('list'), path)",
)
reads(
    "fstring_path",
    [
        "import os\nimport pandas as pd\nos.makedirs('data', exist_ok=True)\npd.read_csv('d.csv').to_parquet('data/d.parquet')",
        "name = 'd'",
        '%%cache\ndf = pd.read_parquet(f"data/{name}.parquet")\nprint(df["a"].sum())',
    ],
    _d_csv, _d_csv2, "print(df.to_dict('list'))",
)


def _probe(*paths: str) -> str:
    """A plain cell printing each file's content digest and mode (compared with the plain run)."""
    return d(f"""
    import hashlib, os
    for p in {list(paths)!r}:
        with open(p, 'rb') as fh:
            print(p, hashlib.sha256(fh.read()).hexdigest()[:16], oct(os.stat(p).st_mode & 0o777))
    """)


def _put_back(*paths: str, none: bool = False) -> Callable[[ScenarioResult], None]:
    """The hit note names ``paths`` as put back (``none``: names no file), and every plain cell
    after the cached one shows in phase 2 what it showed in phase 1 (the very bytes the run wrote)."""

    def put_back(r: ScenarioResult) -> None:
        cached = r.scenario.cached([c.source for c in r.second])[-1]
        lines = [line for line in nbcache_lines(r.second[cached]) if "restored from cache" in line]
        assert lines, r.second[cached].outputs
        if none:
            assert "files put back" not in lines[0], lines
        for p in paths:
            assert "files put back: " in lines[0] and p in lines[0].split("files put back: ", 1)[1], (p, lines)
        for first, second in zip(r.first[cached + 1 :], r.second[cached + 1 :]):
            assert comparable(first.outputs) == comparable(second.outputs), (second.source, first.outputs, second.outputs)

    return put_back


def writes(name: str, cells: list[str], outputs: list[str], files: dict[str, str] | None = None, after: tuple[str, ...] = (), **kwargs: Any) -> None:
    """``cells`` (the last one cached) write ``outputs``; they are removed before phase 2: the
    hit puts them back, byte for byte, with their mode (``after``: more plain probe cells)."""
    scenario(
        name=f"writes_{name}_put_back_by_a_hit",
        cells=[*cells, _probe(*outputs), *after],
        files=files or {},
        files2={p: None for p in outputs},
        check=_put_back(*outputs),
        **kwargs,
    )


writes("pandas_to_parquet", ["%%cache\nimport pandas as pd\nout = pd.DataFrame({'a': [1, 2, 3]})\nout.to_parquet('out.parquet')\nprint(len(out))"], ["out.parquet"])
scenario(
    name="writes_parquet_left_in_place_hits_and_puts_nothing_back",
    cells=["%%cache\nimport pandas as pd\nout = pd.DataFrame({'a': [1, 2, 3]})\nout.to_parquet('out.parquet')\nprint(len(out))", _probe("out.parquet")],
    check=_put_back(none=True),
)
writes("polars_write_csv", ["%%cache\nimport polars as pl\npl.DataFrame({'a': [1, 2], 'b': ['x', 'y']}).write_csv('out.csv')\nprint('written')"], ["out.csv"])
writes("numpy_save", ["%%cache\nimport numpy as np\nnp.save('arr.npy', np.arange(6).reshape(2, 3))\nprint('saved')"], ["arr.npy"])
writes(
    "matplotlib_savefig",
    ["import matplotlib\nmatplotlib.use('Agg')", "%%cache\nimport matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.savefig('fig.png')\nplt.close('all')\nprint('saved')"],
    ["fig.png"],
    isolate=True,  # the backend outlives the harness's resets
)
writes("torch_save", ["%%cache\nimport torch\nweights = {'w': torch.arange(4.0)}\ntorch.save(weights, 'model.pt')\nprint('saved')"], ["model.pt"])
writes("joblib_dump", ["%%cache\nimport joblib\ndumped = joblib.dump({'a': [1, 2, 3]}, 'model.joblib')\nprint(dumped)"], ["model.joblib"])
writes(
    "sqlite",
    [
        d("""
        %%cache
        import sqlite3
        con = sqlite3.connect('out.db')
        con.execute('create table t (a integer)')
        con.executemany('insert into t values (?)', [(1,), (2,)])
        con.commit()
        con.close()
        print('written')
        """)
    ],
    ["out.db"],
)
writes(
    "sqlite_connection_deleted",  # the same without the closed Connection left bound
    [
        d("""
        %%cache
        import sqlite3
        con = sqlite3.connect('out.db')
        con.execute('create table t (a integer)')
        con.executemany('insert into t values (?)', [(1,), (2,)])
        con.commit()
        con.close()
        del con
        print('written')
        """)
    ],
    ["out.db"],
)
writes("open_with_block", ["%%cache\nwith open('w.txt', 'w') as fh:\n    fh.write('hello\\n')\nprint('written')"], ["w.txt"])
scenario(
    name="writes_an_overwritten_file_edited_since_is_put_back_by_a_hit",
    cells=["%%cache\nwith open('w.txt', 'w') as fh:\n    fh.write('hello\\n')\nprint('written')", _probe("w.txt")],
    files={"w.txt": "before\n"},
    files2={"w.txt": "edited by hand\n"},  # the cell overwrites it unread: its content is no input
    check=_put_back("w.txt"),
)
writes(
    "chmod_0600",
    ["%%cache\nimport os\nwith open('secret.txt', 'w') as fh:\n    fh.write('s3cret')\nos.chmod('secret.txt', 0o600)\nprint('written')"],
    ["secret.txt"],
)
writes(
    "folder_of_outputs",
    [
        d("""
        %%cache
        import os
        os.makedirs('out', exist_ok=True)
        for i in range(3):
            with open(f'out/part{i}.txt', 'w') as fh:
                fh.write(str(i) * (i + 1))
        print('written')
        """),
    ],
    ["out/part0.txt", "out/part1.txt", "out/part2.txt"],
    after=("print(sorted(os.listdir('out')), oct(os.stat('out').st_mode & 0o777))",),
)
writes("shell_cp", ["%%cache\n!cp src.txt dst.txt\nprint('copied')"], ["dst.txt"], files={"src.txt": "source text\n"})
scenario(
    name="writes_a_removed_file_is_removed_again_by_a_hit",
    cells=["%%cache\nimport os\nos.remove('old.txt')\nprint('removed')", "import os\nprint(os.path.exists('old.txt'))"],
    files={"old.txt": "stale"},
    files2={"old.txt": "stale"},  # back again, as the run found it: the hit removes it
    check=_put_back("old.txt"),
)
scenario(
    name="writes_a_scratch_file_hits_and_puts_nothing_back",
    cells=[
        d("""
        %%cache
        import os
        with open('scratch.tmp', 'w') as fh:
            fh.write('tmp')
        with open('scratch.tmp') as fh:
            scratch_text = fh.read()
        os.remove('scratch.tmp')
        print(scratch_text)
        """),
        "import os\nprint(os.path.exists('scratch.tmp'), scratch_text)",
    ],
    check=_put_back(none=True),
)


# == unhashable inputs ===========================================================================
def _one_nbcache_line_on_stderr(r: ScenarioResult) -> None:
    for run in (r.first, r.second):
        lines = [line for line in stderr_lines(run[1]) if line.startswith("nbcache:")]
        assert len(lines) == 1, stderr_lines(run[1])


scenario(
    name="generator_input_runs_uncached",
    cells=["gen = (i * i for i in range(5))", "%%cache\nsquares = list(gen)\nprint(squares)\n", "print(squares, list(gen))"],
    expect="miss",
    check=_one_nbcache_line_on_stderr,
)

# == mutation ====================================================================================
scenario(
    name="mutation_list_append",
    cells=["lst = [1]\nalias = lst", "%%cache\nlst.append(2)\n", "print(lst, alias, alias is lst)"],
)
scenario(
    name="mutation_dataframe_setitem",
    cells=[
        'import pandas as pd\nframe = pd.DataFrame({"a": [3, 1, 2]})\nsame = frame',
        '%%cache\nframe["c"] = frame["a"] * 2\n',
        "print(frame)\nprint(same is frame, list(same.columns))",
    ],
)
scenario(
    name="mutation_sort_values_inplace",
    cells=[
        # pandas 3.1 warns that inplace is deprecated, with the kernel's temporary file name in the text
        'import warnings\nwarnings.filterwarnings("ignore", message=".*inplace.*")\n'
        'import pandas as pd\nframe = pd.DataFrame({"a": [3, 1, 2], "b": list("xyz")})\nsame = frame',
        '%%cache\nframe.sort_values("a", inplace=True)\n',
        "print(frame)\nprint(same is frame, same.index.tolist())",
    ],
)
scenario(
    name="mutation_object_attribute",
    cells=[
        "class Box:\n    pass\n\nbox = Box()\nbox.x = 1\nother = box",
        "%%cache\nbox.x = 5\nbox.y = 'new'\n",
        "print(box.x, box.y, other.x, other is box, isinstance(box, Box), sorted(vars(other)))",
    ],
)
scenario(
    name="mutation_user_method",
    cells=[
        "class Counter:\n    def __init__(self):\n        self.items = []\n    def add(self, v):\n        self.items.append(v)\n\ncounter = Counter()\nref = counter",
        "%%cache\ncounter.add(3)\ncounter.add(4)\n",
        "print(counter.items, ref.items, ref is counter)",
    ],
)
scenario(
    name="mutation_dict_setitem_and_numpy_inplace",
    cells=[
        "import numpy as np\nsettings = {'a': 1}\nvec = np.zeros(3)\nvec_alias = vec\nsettings_alias = settings",
        "%%cache\nsettings['b'] = 2\nvec += 1\nvec[0] = 9\n",
        "print(settings_alias, vec_alias.tolist(), vec_alias is vec, settings_alias is settings)",
    ],
)

# == identity ====================================================================================
scenario(
    name="identity_chained_assignment",
    cells=["%%cache\na = b = []\n", "a.append(1)\nprint(a, b, a is b)"],
)
scenario(
    name="identity_alias_of_preexisting_object",
    cells=["base = [1, 2]", "%%cache\nview = base\n", "view.append(3)\nprint(base, view is base)"],
)
scenario(
    name="identity_alias_inside_container",
    cells=["%%cache\nshared = {'k': 1}\npair = [shared, shared]\n", "pair[0]['k'] = 2\nprint(pair, shared, pair[1] is shared)"],
)
scenario(
    name="identity_numpy_view_of_new_array",
    cells=[
        "import numpy as np",
        "%%cache\nbig = np.arange(6)\nwindow = big[1:3]\n",
        "window[0] = 100\nprint(big.tolist(), window.base is big)",
    ],
)
scenario(
    name="identity_instance_of_live_class",
    cells=[
        "class Point:\n    def __init__(self, x, y):\n        self.x, self.y = x, y\n",
        "%%cache\npt = Point(1, 2)\n",
        "print(isinstance(pt, Point), type(pt) is Point, pt.x, pt.y)",
    ],
)

scenario(
    name="identity_object_heavy_records_alias_earlier_objects",
    cells=[
        "lookup = {'currency': 'EUR'}\nclass Row:\n    def __init__(self, i):\n        self.i = i\ndef label(r):\n    return f\"{r['id']}-{lookup['currency']}\"\n",
        d("""
        %%cache
        records = [{"id": i, "meta": lookup, "row": Row(i), "tags": ["a", str(i)], "label": label} for i in range(30_000)]
        print(len(records))
        """),
        d("""
        print(all(r["meta"] is lookup and type(r["row"]) is Row and r["label"] is label for r in records))
        lookup["currency"] = "USD"
        print(records[7]["meta"], records[7]["label"](records[7]), records[29_999]["tags"], records[3]["row"].i)
        """),
    ],
)


# == does the cache pay? ===========================================================================
def _told_once_with_both_times(r: ScenarioResult) -> None:
    judged, told, silent = r.second[1], r.second[2], r.second[3]
    assert [line for line in stderr_lines(judged) if line.startswith("nbcache:")] == [], judged.outputs
    (line,) = [line for line in stderr_lines(told) if line.startswith("nbcache:")]
    assert line.startswith("nbcache: not worth caching: restoring it took ") and ", running it " in line, line
    assert [line for line in stderr_lines(silent) if line.startswith("nbcache:")] == []  # once


_slow_restore = [
    slow_to_restore(0.2),
    "%%cache\nfrozen = Frozen()\nprint('made it')\n",
    "print(type(frozen).__name__)",
]
scenario(
    name="restore_that_does_not_pay_runs_the_cell_after_its_first_hit",
    cells=_slow_restore,
    # the first hit restores (and is judged); the runs after it run the cell, storing nothing
    cells2=[_slow_restore[0], _slow_restore[1], _slow_restore[1], _slow_restore[1], _slow_restore[2]],
    expect=["hit", "miss", "miss"],
    check=_told_once_with_both_times,
)


# == interpreter state ===========================================================================
scenario(
    name="state_random_seed_in_cell",
    cells=["%%cache\nimport random\nrandom.seed(1)\nfirst_draw = random.random()\n", "print(first_draw, random.random())"],
)
scenario(
    name="state_random_seeded_before_cell",
    cells=["import random\nrandom.seed(7)", "%%cache\ndraws = [random.randint(0, 100) for _ in range(3)]\n", "print(draws, random.randint(0, 100))"],
)
scenario(
    name="state_numpy_random",
    cells=[
        "import numpy as np\nnp.random.seed(3)",
        "%%cache\nnoise = np.random.rand(2).tolist()\n",
        "print(noise, np.random.rand())",
    ],
)
scenario(
    # Python's own generator starts from a new seed in every kernel: a cell that draws only from
    # a numpy generator seeded earlier must still hit (found running statsmodels' ols notebook).
    name="state_numpy_seeded_while_random_differs",
    cells=[
        "import numpy as np\nnp.random.seed(3)",
        "import random, os\nrandom.seed(os.urandom(8))",
        "%%cache\nnoise = np.random.normal(size=3).tolist()\n",
        "%%cache\ntotal = round(sum(noise), 12)\n",
        "print(noise, total, np.random.rand())",
    ],
)
scenario(
    # reading a generator's state without drawing from it is depending on it too
    name="state_numpy_random_state_read_not_drawn",
    cells=[
        "import numpy as np\nnp.random.seed(3)",
        "%%cache\nposition = int(np.random.get_state()[2])\n",
        "print(position)",
    ],
    cells2=["import numpy as np\nnp.random.seed(3)\nnp.random.rand(5)", "%%cache\nposition = int(np.random.get_state()[2])\n", "print(position)"],
    expect="miss",
)
scenario(
    name="state_pandas_option",
    cells=['%%cache\nimport pandas as pd\npd.set_option("display.max_rows", 5)\nrows = 20\n', 'print(pd.DataFrame({"a": range(rows)}))'],
)
scenario(
    name="state_matplotlib_rcparams",
    cells=['%%cache\nimport matplotlib.pyplot as plt\nplt.rcParams["lines.linewidth"] = 4.5\n', 'print(plt.rcParams["lines.linewidth"])'],
)
scenario(
    name="state_matplotlib_style_use",
    cells=['%%cache\nimport matplotlib.pyplot as plt\nplt.style.use("ggplot")\n', 'print(plt.rcParams["axes.facecolor"], plt.rcParams["axes.grid"])'],
)
scenario(
    name="state_environment_variable_set_in_cell",
    cells=['%%cache\nimport os\nos.environ["NBC_SCENARIO_X"] = "42"\n', 'print(os.environ.get("NBC_SCENARIO_X"))\n!echo shell sees $NBC_SCENARIO_X'],
)
scenario(
    name="state_chdir_in_cell",
    cells=["import os\nstart = os.getcwd()", '%%cache\nos.chdir("sub")\n', "print(os.path.relpath(os.getcwd(), start))\nprint(open('inside.txt').read())"],
    files={"sub/inside.txt": "found"},
)
scenario(
    # scikit-learn's import does os.environ.setdefault("KMP_INIT_AT_FORK", ...): the value the
    # cell depends on is the one before it ran (unset), and a hit sets it again.
    name="env_var_set_then_read_by_cell",
    cells=['%%cache\nimport os\nos.environ.setdefault("NBC_SCENARIO_SET", "on")\nflag = os.environ["NBC_SCENARIO_SET"]\n', 'print(flag, os.environ.get("NBC_SCENARIO_SET"))'],
)
scenario(
    # A library object whose pickle round trip is inexact (Bunch drops an attribute): cells
    # reading the restored object must hit as they did reading the original.
    name="inexact_pickle_round_trip_downstream_hits",
    cells=[
        "%%cache\nfrom sklearn.datasets import load_iris\niris = load_iris()\n",
        "%%cache\nn_rows = len(iris.data)\nprint(n_rows, sorted(iris.keys()))\n",
        "print(n_rows)",
    ],
)
scenario(
    # Out[n] shows what was shown when the cell ran: a matplotlib Text moves once its figure is
    # drawn, and a figure restored from a pickle renders no PNG of its own.
    name="result_shown_as_when_it_ran",
    cells=[
        "%matplotlib inline\nimport matplotlib.pyplot as plt",
        '%%cache\nfig, ax = plt.subplots(figsize=(2, 2))\nax.plot([1, 2, 3])\nax.set_xlabel("fitted")\n',
        "%%cache\nfig2 = plt.figure(figsize=(2, 2))\nfig2.add_subplot().plot([3, 1])\nfig2\n",
        "print(_)",
    ],
)
scenario(
    # the same relative path in another folder is another file
    name="relative_read_after_chdir_misses",
    cells=['import os\nos.chdir("a")', "%%cache\ntext = open('data.txt').read()\nprint(text)\n"],
    cells2=['import os\nos.chdir("b")', "%%cache\ntext = open('data.txt').read()\nprint(text)\n"],
    files={"a/data.txt": "from a", "b/data.txt": "from b"},
    expect="miss",
)
scenario(
    # shutil.rmtree opens the folder it empties: a folder is not a file that "now exists"
    name="folder_opened_by_rmtree_still_hits",
    cells=['%%cache\nimport os, shutil\nos.makedirs("out", exist_ok=True)\nshutil.rmtree("out")\nos.makedirs("out")\nmade = sorted(os.listdir("."))\n', "print(made)"],
)
scenario(
    name="env_var_read_by_cell_change_misses",
    cells=['%%cache\nimport os\nmode = os.environ.get("NBC_SCENARIO_MODE")\nprint(mode)\n', "print(mode)"],
    env={"NBC_SCENARIO_MODE": "fast"},
    env2={"NBC_SCENARIO_MODE": "slow"},
    expect="miss",
)

# == outputs =====================================================================================
scenario(
    name="output_stdout_stderr_interleaved",
    cells=["%%cache\nimport sys\nprint('one')\nprint('two', file=sys.stderr)\nprint('three')\nstreams = 1\n", "print(streams)"],
)
scenario(
    name="output_html_display",
    cells=["%%cache\nfrom IPython.display import HTML, display\ndisplay(HTML('<b>bold</b>'))\nshown = 'ok'\n", "print(shown)"],
)
scenario(
    name="output_dataframe_table_result",
    cells=['%%cache\nimport pandas as pd\npd.DataFrame({"a": [1, 2], "b": ["x", "y"]})\n', "print(type(_).__name__, _.shape)"],
)
scenario(
    name="output_matplotlib_inline_figure",
    cells=[
        "%%cache\nimport matplotlib.pyplot as plt\nfig, ax = plt.subplots(figsize=(2, 2), dpi=50)\nax.plot([1, 3, 2]);\n",
        "print(len(ax.lines), fig.get_size_inches().tolist())",
    ],
)
scenario(
    name="output_execute_result_and_underscore",
    cells=["%%cache\nanswer = 6\nanswer * 7\n", "print(repr(_), list(Out.values()))"],
)
scenario(
    name="output_trailing_semicolon",
    cells=["'before'", "%%cache\nsilent = 7\nsilent * 6;\n", "print(repr(_), silent, list(Out.values()))"],
)
scenario(
    name="output_del",
    cells=["tmp = 1\nkeep = 0", "%%cache\ndel tmp\nkeep = 2\n", "print('tmp' in dir(), keep)"],
)
scenario(
    name="output_shell_commands",
    cells=["%%cache\n!echo from-the-shell\ncaptured = !echo captured\n", "print(captured, type(captured).__name__)"],
)


# == more: state read by the cell, code and identities ===========================================
_seeded = ["import random\nrandom.seed(7)", "%%cache\nrolled = [random.randint(0, 100) for i in range(3)]\n", "print(rolled, random.randint(0, 100))"]
scenario(name="random_state_before_cell_change_misses", cells=_seeded, cells2=sub(_seeded, "seed(7)", "seed(8)"), expect="miss")
_npseeded = ["import numpy as np\nnp.random.seed(1)", "%%cache\nsample = np.random.randint(0, 100, 3).tolist()\n", "print(sample, np.random.randint(0, 100))"]
scenario(name="numpy_random_state_before_cell_change_misses", cells=_npseeded, cells2=sub(_npseeded, "seed(1)", "seed(2)"), expect="miss")
_opt = [
    'import pandas as pd\npd.set_option("display.max_rows", 4)',
    '%%cache\nlong = pd.DataFrame({"a": range(10)})\nprint(long)\n',
    "print(len(long))",
]
scenario(name="pandas_option_before_cell_change_misses", cells=_opt, cells2=sub(_opt, '"display.max_rows", 4', '"display.max_rows", 6'), expect="miss")
_rc = [
    'import matplotlib.pyplot as plt\nplt.rcParams["figure.figsize"] = (2.0, 1.0)\nplt.rcParams["figure.dpi"] = 40',
    "%%cache\nfig2, ax2 = plt.subplots()\nax2.plot([1, 2, 1]);\n",
    "print(fig2.get_size_inches().tolist())",
]
scenario(name="rcparams_before_figure_cell_change_misses", cells=_rc, cells2=sub(_rc, "(2.0, 1.0)", "(3.0, 1.0)"), expect="miss")
_cwd = ["import os\nos.chdir('one')", "%%cache\nwith open('name.txt') as fh:\n    where = fh.read()\nprint(where)\n", "print(where)"]
scenario(
    name="cwd_before_cell_change_misses",
    cells=_cwd,
    cells2=sub(_cwd, "'one'", "'two'"),
    files={"one/name.txt": "first folder", "two/name.txt": "second folder"},
    expect="miss",
)
scenario(
    name="helper_reads_file_change_misses",
    cells=[
        "def load_words(path):\n    with open(path) as fh:\n        return fh.read().split()\n",
        "%%cache\nwords = load_words('words.txt')\nprint(words)\n",
        "print(len(words))",
    ],
    files={"words.txt": "a b c"},
    files2={"words.txt": "a b d"},
    expect="miss",
)
_imported_fn = ["from helpers import compute", "%%cache\nimported_value = compute(3)\nprint(imported_value)\n", "print(imported_value)"]
scenario(
    name="function_imported_from_local_module_edit_misses",
    cells=_imported_fn,
    files=_mod_files,
    files2={"helpers.py": "from util import base\n\ndef compute(x):\n    return x * 30 + base()\n"},
    expect="miss",
    isolate=True,
)
scenario(
    name="input_mutated_through_helper",
    cells=["def fill(target):\n    target.extend([7, 8])\n", "bucket = []\nbucket_alias = bucket", "%%cache\nfill(bucket)\n", "print(bucket, bucket_alias, bucket_alias is bucket)"],
)
scenario(
    name="identity_new_container_holds_preexisting_object",
    cells=["base_obj = [1]", "%%cache\nholder = {'ref': base_obj, 'copy': list(base_obj)}\n", "base_obj.append(2)\nprint(holder, holder['ref'] is base_obj)"],
)
scenario(
    name="global_set_by_function_called_in_cell",
    cells=["%%cache\ndef set_flag():\n    global FLAG\n    FLAG = 'on'\nset_flag()\n", "print(FLAG)"],
)
scenario(
    name="function_defined_in_cell_reads_live_globals",
    cells=["G = 1", "%%cache\ndef get_g():\n    return G\nsnapshot = get_g()\n", "G = 10\nprint(snapshot, get_g())"],
)
scenario(
    name="class_defined_in_cell_and_instance",
    cells=["%%cache\nclass Kind:\n    label = 'k'\nkind = Kind()\n", "print(isinstance(kind, Kind), type(kind) is Kind, kind.label)"],
)
scenario(
    name="module_alias_bound_in_cell",
    cells=["%%cache\nimport json as j\nfrom os import path as osp\n", "import sys, os\nprint(j is sys.modules['json'], osp is os.path, j.dumps([1]))"],
)
scenario(
    name="lambda_bound_in_cell_still_works",
    cells=["%%cache\ninc = lambda x: x + 1\nfuncs = [inc, inc]\n", "print(inc(1), funcs[0] is funcs[1], funcs[0] is inc)"],
)
scenario(
    name="file_written_by_cell_deleted_before_rerun",
    cells=["%%cache\nwith open('out.txt', 'w') as fh:\n    fh.write('written')\nwrote = True\n", "print(open('out.txt').read(), wrote)"],
    files2={"out.txt": None},
    expect="any",
)


# == more: values that differ subtly, reads nbcache has to see =====================================
def _repr_cell(name: str) -> str:
    return f"%%cache\nshown_{name} = repr({name})\nprint(shown_{name})\n"


for _name, _before, _after in [
    ("nested_list_element_change_misses", 'params = {"lr": [0.1, 0.2]}', 'params = {"lr": [0.1, 0.3]}'),
    ("negative_zero_change_misses", "zero = 0.0", "zero = -0.0"),
    ("int_vs_bool_change_misses", "flag = 1", "flag = True"),
    ("numpy_dtype_change_same_values_misses", "import numpy as np\nints = np.array([1, 2], dtype=np.int64)", "import numpy as np\nints = np.array([1, 2], dtype=np.int32)"),
    (
        "dataframe_column_order_change_misses",
        'import pandas as pd\ncols = pd.DataFrame({"a": [1], "b": [2]})',
        'import pandas as pd\ncols = pd.DataFrame({"b": [2], "a": [1]})',
    ),
]:
    _var = _before.split("\n")[-1].split(" = ")[0]
    _cells = [_before, _repr_cell(_var), f"print(shown_{_var})"]
    scenario(name=_name, cells=_cells, cells2=sub(_cells, _before, _after), expect="miss")

_cls_attr = [
    "class Config:\n    RATE = 2\n    def scaled(self, x):\n        return x * self.RATE\n",
    "%%cache\nrated = Config().scaled(5)\nprint(rated)\n",
    "print(rated)",
]
scenario(name="class_attribute_edit_misses", cells=_cls_attr, cells2=sub(_cls_attr, "RATE = 2", "RATE = 3"), expect="miss")
scenario(
    name="module_imported_before_cell_edit_misses",
    cells=["import helpers", "%%cache\nfrom_module = helpers.compute(2)\nprint(from_module)\n", "print(from_module)"],
    files=_mod_files,
    files2={"helpers.py": "from util import base\n\ndef compute(x):\n    return x * 40 + base()\n"},
    expect="miss",
    isolate=True,
)
scenario(
    name="numpy_load_file_change_misses",
    cells=["%%cache\nimport numpy as np\nloaded = np.loadtxt('nums.txt').tolist()\nprint(loaded)\n", "print(loaded)"],
    files={"nums.txt": "1 2 3\n"},
    files2={"nums.txt": "1 2 4\n"},
    expect="miss",
)
scenario(
    name="pathlib_read_text_change_misses",
    cells=["%%cache\nfrom pathlib import Path\nnote = Path('note.txt').read_text()\nprint(note)\n", "print(note)"],
    files={"note.txt": "v1"},
    files2={"note.txt": "v2"},
    expect="miss",
)
scenario(
    name="listdir_without_deps_new_file_misses",
    cells=["%%cache\nimport os\nentries = sorted(os.listdir('inbox'))\nprint(entries)\n", "print(entries)"],
    files={"inbox/a.txt": "a"},
    files2={"inbox/b.txt": "b"},
    expect="miss",
)
scenario(
    name="shell_command_reads_changed_file_misses",
    cells=["%%cache\n!cat shell.txt\n", "print('after')"],
    files={"shell.txt": "old contents\n"},
    files2={"shell.txt": "new contents\n"},
    expect="miss",
)
scenario(
    name="shell_command_reads_changed_env_var_misses",
    cells=["%%cache\nfrom_env = !printenv NBC_SCENARIO_SHELL\nprint(from_env)\n", "print(from_env)"],
    env={"NBC_SCENARIO_SHELL": "one"},
    env2={"NBC_SCENARIO_SHELL": "two"},
    expect="miss",
)


# == issue 14: everything a cell changes ==========================================================
# -- effects through called code ----------------------------------------------------------------
scenario(
    name="callee_appends_to_global_list",
    cells=["log = []\nlog_alias = log\ndef add(v):\n    log.append(v)\n", "%%cache\nadd(5)\n", "print(log, log_alias is log)"],
)
scenario(
    name="method_of_input_mutates_global_dict",
    cells=[
        "registry = {}\nclass Registrar:\n    def register(self, k, v):\n        registry[k] = v\n\nreg = Registrar()",
        "%%cache\nreg.register('a', 1)\n",
        "print(registry)",
    ],
)
scenario(
    name="callee_of_callee_mutates_global",
    cells=["seen = set()\ndef note(v):\n    seen.add(v)\ndef handle(v):\n    note(v * 2)\n", "%%cache\nhandle(4)\n", "print(sorted(seen))"],
)
scenario(
    name="callee_mutation_depends_on_global_value",
    cells=["log = [1]\ndef add(v):\n    log.append(v + len(log))\n", "%%cache\nadd(5)\n", "print(log)"],
    cells2=["log = [1, 1]\ndef add(v):\n    log.append(v + len(log))\n", "%%cache\nadd(5)\n", "print(log)"],
    expect="miss",
)
_attr_files = {"helpers.py": "SCALE = 1\nlog = []\n\ndef f(x):\n    return x * SCALE\n\ndef add(v):\n    log.append(v)\n"}
_attr_cells = ["import helpers\nhelpers.SCALE = 2", "%%cache\nres = helpers.f(3)\nprint(res)\n", "print(res)"]
scenario(
    name="module_attribute_set_at_run_time_misses_when_changed",
    cells=_attr_cells,
    cells2=sub(_attr_cells, "SCALE = 2", "SCALE = 3"),
    files=_attr_files,
    expect="miss",
    isolate=True,
)
scenario(name="module_attribute_set_at_run_time_hits_when_same", cells=_attr_cells, files=_attr_files, isolate=True)
scenario(
    name="function_imported_from_module_reads_changed_attribute_misses",
    cells=["import helpers\nfrom helpers import f\nhelpers.SCALE = 4", "%%cache\nout = f(2)\nprint(out)\n", "print(out)"],
    cells2=["import helpers\nfrom helpers import f\nhelpers.SCALE = 5", "%%cache\nout = f(2)\nprint(out)\n", "print(out)"],
    files=_attr_files,
    expect="miss",
    isolate=True,
)
scenario(
    name="module_function_mutates_module_attribute",
    cells=["import helpers\nalias = helpers.log", "%%cache\nhelpers.add(5)\n", "print(helpers.log, alias is helpers.log)"],
    files=_attr_files,
    isolate=True,
)
scenario(
    name="module_attribute_assigned_in_cached_cell",
    cells=["import helpers", "%%cache\nhelpers.SCALE = 5\n", "print(helpers.f(2), helpers.SCALE)"],
    files=_attr_files,
    isolate=True,
)

# -- numpy views -------------------------------------------------------------------------------
_views = [
    "import numpy as np\nx2 = np.arange(12).reshape(3, 4)",
    "%%cache\nx2_sub = x2[:2, :2]\nprint(x2_sub)\n",
    "%%cache\nx2_sub[0, 0] = 99\nprint(x2_sub)\n",
    "print(x2)",
]
scenario(name="view_of_preexisting_array_written_by_cached_cell", cells=_views)
scenario(
    name="view_of_preexisting_array_written_by_plain_cell",
    cells=["import numpy as np\nx2 = np.arange(12).reshape(3, 4)", "%%cache\nx2_sub = x2[:2, ::2]\n", "x2_sub[0, 0] = 99\nprint(x2)\nprint(np.shares_memory(x2, x2_sub))"],
)

# -- outputs -----------------------------------------------------------------------------------
scenario(
    # the kernel sends what a stream holds 0.2 s after the first write: writes a second apart
    # arrive interleaved, writes a moment apart grouped by stream
    name="output_stdout_stderr_interleaved_slowly",
    cells=["%%cache\nimport sys, time\nprint('o1')\ntime.sleep(0.6)\nsys.stderr.write('e1')\ntime.sleep(0.6)\nprint('o2')\n"],
)
scenario(
    name="output_stdout_stderr_written_quickly",
    cells=["%%cache\nimport sys\nprint('o1')\nsys.stderr.write('e1')\nprint('o2')\n"],
)
scenario(
    name="output_explicit_flush_between_streams",
    cells=["%%cache\nimport sys\nprint('o1', flush=True)\nprint('e1', file=sys.stderr, flush=True)\nprint('o2')\n"],
)
scenario(
    name="empty_cache_cell_is_a_no_op",
    cells=["%%cache\n", "empty_next = 1\nprint(empty_next)"],
    expect="miss",
)

# -- imports -----------------------------------------------------------------------------------
scenario(
    name="import_numpy_again_after_an_earlier_cell",
    cells=["import numpy as np", "%%cache\nimport numpy as np\narr3 = np.arange(3)\n", "print(arr3, np.__name__)"],
    cells2=["%%cache\nimport numpy as np\narr3 = np.arange(3)\n", "print(arr3, np.__name__)"],
)
scenario(
    name="function_from_module_imported_again_after_an_earlier_cell",
    cells=["from json import dumps", "%%cache\nfrom json import dumps\ntext = dumps([1])\n", "print(text, dumps.__module__)"],
    cells2=["%%cache\nfrom json import dumps\ntext = dumps([1])\n", "print(text, dumps.__module__)"],
)
_preamble = d("""
    from matplotlib_inline.backend_inline import set_matplotlib_formats
    from IPython.display import display
    import pandas as pd
    import numpy as np
    import matplotlib.pyplot as plt
    from cycler import cycler

    set_matplotlib_formats("pdf", "png")
    plt.rcParams["savefig.dpi"] = 300
    plt.rcParams["image.cmap"] = "viridis"
    plt.rcParams["lines.linewidth"] = 2
    plt.rc("axes", prop_cycle=(cycler("color", ["#0000aa", "#ff2020", "#50ff50"]) + cycler("linestyle", ["-", "-", "--"])))
    np.set_printoptions(precision=3, suppress=True)
    pd.set_option("display.max_columns", 8)
    pd.set_option("display.precision", 2)
    __all__ = ["np", "display", "plt", "pd"]
""")
scenario(
    # a textbook's first cell: what importing preamble.py did is done again by the hit, so the
    # later cells hit (they depend on print options and rcParams) and figures keep their PDF
    name="setup_cell_importing_a_local_preamble",
    cells=[
        "%%cache\n%matplotlib inline\nfrom preamble import *\n",
        "%%cache\nthirds = np.array([1 / 3, 2 / 3])\nprint(thirds)\n",
        "%%cache\nframe = pd.DataFrame({'a': [1 / 3, 2 / 3]})\nframe\n",
        "%%cache\nfig, ax = plt.subplots(figsize=(1, 1))\nax.plot([1, 2]);\n",
        "import sys\nprint(np.get_printoptions()['precision'], plt.rcParams['lines.linewidth'], pd.get_option('display.precision'), 'preamble' in sys.modules)",
    ],
    files={"preamble.py": _preamble},
    env={"SOURCE_DATE_EPOCH": "0"},  # a reproducible PDF
    isolate=True,
)
_no_plot = ["import matplotlib\nmatplotlib.rcParams['lines.linewidth'] = 1.0", "%%cache\ntotal = sum(range(10))\nprint(total)\n", "print(total)"]
scenario(name="cell_that_never_plots_ignores_rcparams", cells=_no_plot, cells2=sub(_no_plot, "= 1.0", "= 3.0"))

# -- generators --------------------------------------------------------------------------------
def _next_draw_probe(draw: str) -> str:
    """Prints whether the draw after the cell is the one the first run saw: a hit that restored
    the recorded state of an unseeded generator would make it so."""
    return d(f"""
    import os
    after = repr({draw})
    before = open("next.txt").read() if os.path.exists("next.txt") else None
    open("next.txt", "w").write(after)
    print("the same draw as the first run:", before == after)
    """)


scenario(
    name="python_random_unseeded_draw_hits_and_leaves_a_fresh_state",
    cells=["import random", "%%cache\ndraw = random.random()\nprint(0 <= draw < 1)\n", _next_draw_probe("random.random()")],
    fresh_rng=True,
)
scenario(
    name="numpy_unseeded_draw_hits_and_leaves_a_fresh_state",
    cells=["import numpy as np", "%%cache\nnoise = np.random.rand(3)\nprint(noise.shape)\n", _next_draw_probe("np.random.rand()")],
    fresh_rng=True,
    isolate=True,
)
scenario(
    name="numpy_unseeded_draw_then_seeded_misses",
    cells=["import numpy as np", "%%cache\nnoise = np.random.rand(3).round(6).tolist()\n", "print(len(noise))"],
    cells2=["import numpy as np\nnp.random.seed(5)", "%%cache\nnoise = np.random.rand(3).round(6).tolist()\n", "print(noise)"],
    fresh_rng=True,
    isolate=True,
    expect="miss",
)
scenario(
    name="torch_seeded_generator_left_where_the_run_leaves_it",
    cells=["import torch\ntorch.manual_seed(0);", "%%cache\nt = torch.rand(3)\n", "print(t, torch.rand(2))"],
)
scenario(
    name="torch_seed_before_cell_change_misses",
    cells=["import torch\ntorch.manual_seed(0);", "%%cache\nt = torch.rand(3)\nprint(t)\n", "print(torch.rand(2))"],
    cells2=["import torch\ntorch.manual_seed(1);", "%%cache\nt = torch.rand(3)\nprint(t)\n", "print(torch.rand(2))"],
    expect="miss",
)
scenario(
    name="torch_unseeded_draw_hits_and_leaves_a_fresh_state",
    cells=["import torch", "%%cache\nt = torch.rand(3)\nprint(tuple(t.shape))\n", _next_draw_probe("torch.rand(1).item()")],
    fresh_rng=True,
    isolate=True,
)

# -- settings: a hit makes the changes the cell made; a change before the cell misses ----------
scenario(
    name="numpy_printoptions_before_cell_change_misses",
    cells=["import numpy as np", "%%cache\nprint(np.array([1 / 3]))\n"],
    cells2=["import numpy as np\nnp.set_printoptions(precision=2)", "%%cache\nprint(np.array([1 / 3]))\n"],
    expect="miss",
)
scenario(
    name="numpy_printoptions_set_in_cell_restored",
    cells=["%%cache\nimport numpy as np\nnp.set_printoptions(precision=3)\n", "print(np.array([1 / 3]))"],
)
scenario(
    name="numpy_errstate_set_in_cell_restored",
    cells=["%%cache\nimport numpy as np\nprevious = np.seterr(divide='ignore')\n", "print(np.geterr()['divide'], np.array([1.0]) / 0)"],
)
scenario(
    name="torch_default_dtype_set_in_cell_restored",
    cells=["%%cache\nimport torch\ntorch.set_default_dtype(torch.float64)\n", "print(torch.get_default_dtype(), torch.zeros(1).dtype)"],
)
_dtype = ["import torch\ntorch.set_default_dtype(torch.float32)", "%%cache\nzeros = torch.zeros(2)\nprint(zeros.dtype)\n", "print(zeros.dtype)"]
scenario(name="torch_default_dtype_before_cell_change_misses", cells=_dtype, cells2=sub(_dtype, "torch.float32)", "torch.float64)"), expect="miss")
scenario(
    name="torch_deterministic_algorithms_set_in_cell_restored",
    cells=["%%cache\nimport torch\ntorch.use_deterministic_algorithms(True)\n", "print(torch.are_deterministic_algorithms_enabled())"],
)
scenario(
    name="sklearn_config_set_in_cell_restored",
    cells=["%%cache\nimport sklearn\nsklearn.set_config(display='text')\n", "import sklearn\nprint(sklearn.get_config()['display'])"],
    isolate=True,
)
_sk = [
    "import sklearn\nsklearn.set_config(print_changed_only=True)",
    "%%cache\nfrom sklearn.linear_model import Ridge\nprint(repr(Ridge(alpha=2.0)))\n",
]
scenario(name="sklearn_config_before_cell_change_misses", cells=_sk, cells2=sub(_sk, "only=True", "only=False"), expect="miss", isolate=True)
scenario(
    name="polars_config_set_in_cell_restored",
    cells=["%%cache\nimport polars as pl\npl.Config.set_tbl_rows(2);\n", "print(pl.DataFrame({'a': list(range(6))}))"],
    isolate=True,
)
_pl = ["import polars as pl\npl.Config.set_tbl_rows(3);", "%%cache\nprint(pl.DataFrame({'a': list(range(8))}))\n"]
scenario(name="polars_config_before_cell_change_misses", cells=_pl, cells2=sub(_pl, "rows(3)", "rows(5)"), expect="miss", isolate=True)
_warn_probe = "with warnings.catch_warnings(record=True) as caught:\n    warnings.warn('nbcache-scenario warning')\nprint(len(caught))"
scenario(
    name="warnings_filter_set_in_cell_restored",
    cells=["%%cache\nimport warnings\nwarnings.filterwarnings('ignore', message='nbcache-scenario')\n", "import warnings\n" + _warn_probe],
)
scenario(
    name="warnings_filter_before_cell_change_misses",
    cells=["import warnings", "%%cache\n" + _warn_probe + "\n"],
    cells2=["import warnings\nwarnings.filterwarnings('ignore', message='nbcache-scenario')", "%%cache\n" + _warn_probe + "\n"],
    expect="miss",
)
scenario(
    name="decimal_context_set_in_cell_restored",
    cells=["%%cache\nimport decimal\ndecimal.getcontext().prec = 5\n", "import decimal\nprint(decimal.Decimal(1) / decimal.Decimal(7))"],
)
_dec = ["import decimal\ndecimal.getcontext().prec = 6", "%%cache\nseventh = str(decimal.Decimal(1) / decimal.Decimal(7))\nprint(seventh)\n", "print(seventh)"]
scenario(name="decimal_context_before_cell_change_misses", cells=_dec, cells2=sub(_dec, "prec = 6", "prec = 8"), expect="miss")
scenario(
    name="locale_set_in_cell_restored",
    cells=["%%cache\nimport locale\nlocale.setlocale(locale.LC_NUMERIC, 'C.UTF-8');\n", "import locale\nprint(locale.setlocale(locale.LC_NUMERIC))"],
)
_dial = "import nbcache, sys\ndial = nbcache.register_state('scenario.dial', lambda: getattr(sys, 'dial', 1), lambda v: setattr(sys, 'dial', v))\n"
scenario(
    name="registered_state_set_in_cell_restored",
    cells=[_dial, "%%cache\nsys.dial = 3\n", "print(sys.dial)"],
    isolate=True,
)
_dial_read = [_dial + "sys.dial = 2", "%%cache\nprint(sys.dial * 10)\n"]
scenario(name="registered_state_before_cell_change_misses", cells=_dial_read, cells2=sub(_dial_read, "sys.dial = 2", "sys.dial = 4"), expect="miss", isolate=True)


# == rich outputs and pseudo-filesystems ==========================================================
scenario(
    name="plotly_figure_hits",
    cells=[
        "%%cache\nimport plotly.express as px\nfig = px.bar(x=['a', 'b'], y=[3, 1])\nfig\n",
        "print(type(fig).__name__, list(fig.data[0].y))",
    ],
)
scenario(
    name="image_and_audio_hit",
    cells=[
        d("""
        %%cache
        import numpy as np
        from IPython.display import Audio, Image, display
        import io
        from PIL import Image as PILImage
        buf = io.BytesIO()
        PILImage.fromarray(np.full((8, 8, 3), 200, dtype="uint8")).save(buf, "PNG")
        display(Image(buf.getvalue()))
        Audio(np.sin(np.arange(800) / 5), rate=8000)
        """),
        "print(len(buf.getvalue()) > 0)",
    ],
)
scenario(
    name="proc_listing_is_no_dependency_hits",
    cells=["%%cache\nimport os\nhas_proc = len(os.listdir('/proc')) > 0 and len(os.listdir('/dev')) > 0\nprint(has_proc)\n", "print(has_proc)"],
)
def hits_and_misses_on_a_change(name: str, cells: list[str], old: str, new: str) -> None:
    """Two scenarios: ``cells`` hit after a restart; with ``old`` made ``new`` (a one-element
    change of an input), they miss."""
    scenario(name=f"{name}_input_hits", cells=cells)
    scenario(name=f"{name}_element_change_misses", cells=cells, cells2=sub(cells, old, new), expect="miss")


# == library types: torch, polars, Arrow, pandas' Arrow strings, strings, scipy, xarray ===========
# Each hits after a restart (its inputs fingerprint alike in a fresh kernel) and misses on a
# one-element change; what a cached cell produced is restored as it was, and a later cached cell
# that reads it hits too (the restored object fingerprints as the original).
_tensor = [
    "import torch\ntorch.manual_seed(0)\nt = torch.randn(1000, 10)",
    d("""
    %%cache
    total = round(float(t.sum()), 3)
    print(total)
    """),
    "print(total, t.dtype, t.shape)",
]
hits_and_misses_on_a_change("torch_tensor", _tensor, "t = torch.randn(1000, 10)", "t = torch.randn(1000, 10)\nt[3, 2] += 1")

_net = d("""
import torch
class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(20, 8)
        self.out = torch.nn.Linear(8, 20, bias=False)
        self.out.weight = self.emb.weight  # tied
    def forward(self, x):
        return self.out(self.emb(x))
""")
_model = [
    _net,
    d("""
    %%cache
    torch.manual_seed(0)
    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    for step in range(20):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(torch.arange(20)), torch.arange(20))
        loss.backward()
        opt.step()
    net.eval()
    print(round(loss.item(), 3))
    """),
    d("""
    w = net.emb.weight
    print(type(net).__name__, net.training, net.out.weight is w, type(w).__name__, w.dtype, w.device, w.requires_grad)
    print(round(w.detach().sum().item(), 3), w.grad is not None, len(opt.state), opt.param_groups[0]["params"][0] is w, int(opt.state[w]["step"]))
    """),
    d("""
    %%cache
    preds = torch.argmax(net(torch.arange(20)), 1).tolist()
    print(preds)
    """),
]
scenario(name="torch_model_trained_in_a_cached_cell_restores", cells=_model)

_train_input = [
    _net + "torch.manual_seed(0)\nnet = Net()\nalias = net\nopt = torch.optim.SGD(net.parameters(), lr=0.1)\n",
    d("""
    %%cache
    for _ in range(5):
        opt.zero_grad()
        net(torch.arange(20)).pow(2).mean().backward()
        opt.step()
    """),
    d("""
    print(alias is net, opt.param_groups[0]["params"][0] is net.emb.weight)
    print(round(net.emb.weight.detach().sum().item(), 3), round(alias.out.weight.detach().sum().item(), 3), net.emb.weight.grad is not None)
    """),
]
scenario(name="torch_model_trained_in_place_hits_and_updates_it", cells=_train_input)
scenario(
    name="torch_tensor_changed_in_place_updates_its_views",
    cells=["import torch\nt = torch.zeros(4)\nv = t[:2]", "%%cache\nt.add_(1)\n", "print(v.tolist(), t.tolist(), v.untyped_storage().data_ptr() == t.untyped_storage().data_ptr())"],
)

_polars = [
    "import polars as pl\ndf = pl.DataFrame({'a': [3, 1, 2], 's': ['x', 'y', 'z']})",
    "%%cache\nout = df.sort('a').with_columns(b=pl.col('a') * 2)\nprint(out)",
    "print(out.schema, out['b'].to_list(), out['a'].flags)",
    "%%cache\ntotal = out['b'].sum()\nprint(total)",
]
hits_and_misses_on_a_change("polars_frame", _polars, "'y', 'z'", "'w', 'z'")
scenario(
    name="polars_lazy_frame_scanned_file_change_misses",
    cells=["import polars as pl\nlf = pl.scan_csv('data.csv')", "%%cache\ntotal = lf.select(pl.col('a').sum()).collect().item()\nprint(total)", "print(total)"],
    files={"data.csv": "a\n1\n2\n"},
    files2={"data.csv": "a\n1\n5\n"},
    expect="miss",
)

# name: the cell that makes the input, the cached cell, a probe cell, and a one-element change
_INPUTS = {
    "pyarrow_table": (
        "import pyarrow as pa\ntable = pa.table({'a': [1, 2, 3], 's': ['x', 'y', None]})",
        "%%cache\nsubset = table.filter(pa.compute.greater(table['a'], 1))\nprint(subset.num_rows, subset.column('s').null_count)",
        "print(subset.to_pydict())",
        ("'y', None", "'w', None"),
    ),
    "pandas_arrow_strings": (
        "import pandas as pd\nwords = pd.Series([f'w{i}' for i in range(1000)])",
        "%%cache\nlengths = int(words.str.len().sum())\nprint(words.dtype, lengths)",
        "print(lengths)",
        ("for i in range(1000)])", "for i in range(1000)])\nwords[5] = 'changed'"),
    ),
    "list_of_strings": (
        "names = [f'name{i}' for i in range(1000)]",
        "%%cache\nlongest = max(names, key=len)\nprint(longest)",
        "print(longest)",
        ("range(1000)]", "range(1000)]\nnames[10] = 'x'"),
    ),
    "scipy_sparse": (
        "import scipy.sparse as sp\nm = sp.random(100, 100, density=0.05, format='csr', random_state=0)",
        "%%cache\nrows = m.sum(axis=1).round(4).ravel().tolist()[:3]\nprint(m.nnz, rows)",
        "print(rows)",
        ("random_state=0)", "random_state=0)\nm.data[0] += 1"),
    ),
    "xarray": (
        "import numpy as np, xarray as xr\nda = xr.DataArray(np.arange(6.0).reshape(2, 3), dims=('x', 'y'), coords={'x': ['a', 'b']})",
        "%%cache\nmeans = da.mean('y')\nprint(means.values.tolist())",
        "print(means)",
        ("'b']})", "'b']})\nda[1, 1] = -1"),
    ),
}
for _name, (_make, _cached, _probe, (_old, _new)) in _INPUTS.items():
    hits_and_misses_on_a_change(_name, [_make, _cached, _probe], _old, _new)


# == --explain ===================================================================================
def _explain_names_threshold(r: ScenarioResult) -> None:
    lines = nbcache_lines(r.second[1])
    assert any("threshold" in line for line in lines), [o for o in r.second[1].outputs]


_explain = [
    "threshold = 3",
    "%%cache --explain\nbelow = [x for x in range(10) if x < threshold]\nprint(below)\n",
    "print(below)",
]
scenario(
    name="explain_names_changed_input",
    cells=_explain,
    cells2=sub(_explain, "threshold = 3", "threshold = 6"),
    expect="miss",
    check=_explain_names_threshold,
)


# == automatic mode (%cache_all): every cell, no %%cache lines ==================================
_auto_threshold = [
    "threshold = 3",
    "above = [x for x in range(10) if x > threshold]\nprint(above)\nlen(above)",
    "print(above, threshold, _)",
]
scenario(name="auto_warm_run_replays_every_cell", cells=_auto_threshold, auto=True)
scenario(
    name="auto_changed_input_reruns_what_depends_on_it",
    cells=_auto_threshold,
    cells2=sub(_auto_threshold, "threshold = 3", "threshold = 5"),
    expect="miss",
    auto=True,
)
scenario(
    name="auto_mutation_and_aliases",
    cells=["data = [3, 1, 2]\nalias = data", "data.sort()\ndata.append(9)", "print(alias, data is alias, data)"],
    auto=True,
)
scenario(
    name="auto_seeded_random_draws",
    cells=["import numpy as np\nnp.random.seed(7)", "draws = np.random.rand(3).round(6)\nprint(draws)", "print(round(np.random.rand(), 6), draws.sum().round(6))"],
    auto=True,
)
scenario(
    # (found by automatic mode: numpy imported and seeded by the cached cell itself)
    name="state_numpy_imported_and_seeded_in_cell",
    cells=["%%cache\nimport numpy as np\nnp.random.seed(7)\n", "print(np.random.randint(0, 1000, 3))"],
)
scenario(
    name="auto_classes_functions_and_results",
    cells=[
        "class Box:\n    def __init__(self, v):\n        self.v = v\n    def twice(self):\n        return self.v * 2",
        "b = Box(21)\nb.v",
        "print(type(b) is Box, isinstance(b, Box), b.twice())",
        "def helper(x):\n    return x + 1\nvalues = [helper(i) for i in range(3)]\nvalues",
    ],
    auto=True,
)
scenario(
    name="auto_cells_never_cached_run_as_usual",
    cells=["!echo from-the-shell", "listing = !echo captured\nprint(listing)", "%env NBC_AUTO_SCENARIO=1", "import os\nprint(os.environ.get('NBC_AUTO_SCENARIO'))"],
    expect=["miss", "miss", "hit", "hit"],  # the shell cells always run; %env is cached (state restored)
    auto=True,
)
scenario(
    name="auto_a_cell_that_writes_a_file_is_stored_and_hits",
    cells=["with open('out.txt', 'w') as fh:\n    fh.write('written')\ndel fh", "print(open('out.txt').read())"],
    auto=True,
)
scenario(
    name="auto_a_file_written_by_a_cell_is_put_back_by_its_hit",
    cells=["with open('out.txt', 'w') as fh:\n    fh.write('written')\ndel fh", "print(open('out.txt').read())"],
    files2={"out.txt": None},
    auto=True,
)


# == the test ====================================================================================
@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ScenarioResult]:
    return run_scenarios(S, Path(tmp_path_factory.mktemp("scenarios")))


def test_there_are_enough_scenarios() -> None:
    assert len(S) >= 40


@pytest.mark.parametrize("sc", S, ids=[s.name for s in S])
def test_scenario(sc: Scenario, results: dict[str, ScenarioResult]) -> None:
    r = results[sc.name]
    if r.error is not None:
        pytest.fail(f"the scenario did not run: {r.error}")
    # the scenario is sound: the plain run raised nothing
    assert errors(r.plain) == [], "the plain run itself failed"
    cached1 = [r.first[i] for i in sc.cached([c.source for c in r.first])]
    cached2 = [r.second[i] for i in sc.cached([c.source for c in r.second])]
    problems = []
    if [status(c) for c in cached1] != ["miss"] * len(cached1):
        problems.append(f"phase 1 restored something from an empty cache: {[status(c) for c in cached1]}")
    got = [status(c) for c in cached2]
    if sc.expect != "any" and (len(got) != len(sc.expected) or any(e not in ("any", g) for g, e in zip(got, sc.expected))):
        problems.append(f"phase-2 statuses {got}, expected {sc.expected}")
    # every cell shows what the plain run showed
    for got, want in zip(r.second, r.plain):
        if comparable(got.outputs) != comparable(want.outputs):
            problems.append(
                f"cell differs from the plain run:\n{got.source}\n  with %%cache: {comparable(got.outputs)}\n  plain:        {comparable(want.outputs)}"
            )
    if sc.check is not None:
        try:
            sc.check(r)
        except AssertionError as exc:
            problems.append(f"{sc.check.__name__}: {exc}")
    assert not problems, "\n".join(problems)
