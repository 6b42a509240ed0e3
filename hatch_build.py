"""The build hook that compiles nbcache's one C extension, the encoder of runs of strings.

hatchling runs it for wheels and for the editable install (``pip install -e .``, what ``make``
does). It compiles ``nbcache/key/fingerprint/_strings.c`` with the interpreter's own compiler,
headers and extension suffix (``sysconfig``), through a subprocess: no setuptools. The library is
written next to its source, where an editable install imports it from; a wheel ships it and is
tagged for this platform.

The extension is optional: nbcache has a pure-Python encoder that writes the same bytes (so keys
are the same either way), only slower. A failed compile (no compiler, no headers) prints a warning
and the build goes on without it.

``python hatch_build.py`` compiles in place, without pip or hatchling.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

try:
    from hatchling.builders.hooks.plugin.interface import BuildHookInterface
except ImportError:  # `python hatch_build.py`: no build, no hatchling needed
    BuildHookInterface = object  # type: ignore[assignment,misc]

ROOT = Path(__file__).resolve().parent
SOURCE = ROOT / "nbcache" / "key" / "fingerprint" / "_strings.c"
CFLAGS = ["-O2", "-fPIC", "-Wall", "-Wextra"]


def library_path() -> Path:
    return SOURCE.with_name("_strings" + (sysconfig.get_config_var("EXT_SUFFIX") or ".so"))


def compile_extension(target: Path | None = None, flags: tuple[str, ...] = ()) -> Path:
    """Compile the extension to ``target`` (next to its source by default), with ``flags`` after
    the usual ones; raises OSError, CalledProcessError or RuntimeError when it cannot."""
    cc, ldshared = sysconfig.get_config_var("CC"), sysconfig.get_config_var("LDSHARED")
    if not cc or not ldshared:
        raise RuntimeError("this Python names no C compiler (sysconfig CC/LDSHARED)")
    include = sysconfig.get_paths()["include"]
    target = target or library_path()
    with tempfile.TemporaryDirectory() as tmp:
        obj, built = Path(tmp) / "_strings.o", Path(tmp) / target.name
        _run([*shlex.split(cc), *CFLAGS, *flags, f"-I{include}", "-c", str(SOURCE), "-o", str(obj)])
        _run([*shlex.split(ldshared), str(obj), "-o", str(built)])
        # Replaced by a rename, never rewritten in place: a running kernel may have it mapped.
        staged = target.with_name(f".{target.name}.{os.getpid()}")
        staged.write_bytes(built.read_bytes())
        staged.chmod(0o755)
        os.replace(staged, target)
    return target


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise subprocess.CalledProcessError(done.returncode, command, done.stdout, done.stderr)
    if done.stderr.strip():  # warnings: shown, not fatal
        print(done.stderr, file=sys.stderr)


class StringsExtensionHook(BuildHookInterface):  # type: ignore[misc]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        try:
            target = compile_extension()
        except (OSError, RuntimeError, subprocess.CalledProcessError) as error:
            detail = getattr(error, "stderr", None) or error
            print(f"WARNING: nbcache's C string encoder was not compiled ({detail}); nbcache uses its "
                  "pure-Python encoder instead (same keys, slower keys of string columns).", file=sys.stderr)
            return
        # The library is ignored by git, hence by hatchling unless named an artifact.
        build_data["artifacts"].append(target.relative_to(ROOT).as_posix())
        build_data["pure_python"] = False
        build_data["infer_tag"] = True


if __name__ == "__main__":
    print(compile_extension())
