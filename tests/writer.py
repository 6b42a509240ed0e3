"""A separate process that writes entries: killed with SIGKILL or run in parallel by the tests.

    python writer.py ROOT MODE COUNT MB [TAG]

MODE ``distinct`` writes keys unique to TAG, ``same`` writes keys 0..COUNT-1 (shared by every
writer), each entry holding MB megabytes of random floats. Prints each key once it is written.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

import numpy as np  # noqa: E402

from conftest import write_entry  # noqa: E402
from nbcache.store.cache import Cache  # noqa: E402
from nbcache.store.backends import LocalFolderStore, open_store  # noqa: E402


def main() -> None:
    root, mode, count, mb = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    tag = sys.argv[5] if len(sys.argv) > 5 else "0"
    store = open_store(root) if "://" in root else LocalFolderStore(root)
    cache = Cache(store, compression="auto")
    rng = np.random.default_rng(abs(hash(tag)) % 2**32)
    for i in range(count):
        key = f"{i:032x}" if mode == "same" else f"{int(tag):04x}{i:028x}"
        n = max(1, int(mb * 1e6 / 8))
        # Odd entries compress (zstd blobs), even ones do not (raw blobs): both paths get killed.
        value = np.full(n, float(i)) if i % 2 else rng.random(n)
        write_entry(cache, key, label=f"writer {tag}", value=value)
        print(key, flush=True)


if __name__ == "__main__":
    main()
