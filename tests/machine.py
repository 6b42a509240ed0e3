"""One "machine" of a team: a fresh IPython shell in its own process and working folder, with the
shared cache in ``$NBCACHE_DIR``. Runs the cell in the file given and prints a JSON report.

    python machine.py CELL_FILE NAME...
"""

from __future__ import annotations

import json
import sys

from IPython.core.interactiveshell import InteractiveShell


def main() -> None:
    cell = open(sys.argv[1]).read()
    names = sys.argv[2:]
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "nbcache")
    from nbcache.jupyter.extension import session

    result = shell.run_cell(cell)
    magics = session(shell).magics
    outcome = magics.engine.last
    cache = magics.engine.cache
    report = {
        "success": result.success,
        "status": outcome.status if outcome else None,
        "values": {name: repr(shell.user_ns.get(name)) for name in names},
        "index": cache.index.path,
        "stats": [s.key for s in cache.stats()],
    }
    print("REPORT " + json.dumps(report))


if __name__ == "__main__":
    main()
