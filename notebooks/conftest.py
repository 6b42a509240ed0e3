"""nbval runs every notebook against a fresh, empty cache, so outputs are those of a first run."""

import os
import tempfile

os.environ["NBCACHE_DIR"] = tempfile.mkdtemp(prefix="nbcache-nbval-")
