"""The pickle fallback, and the substitutes that keep restored objects' fingerprints.

A value no encoder knows encodes as the digest of its pickle (protocol 5, out-of-band buffers
hashed in place). Inside that pickle, the objects that have encodings of their own keep them: a
function, an array or a frame inside an object stands as its own fingerprint. What pickle
encodes beyond the value is made canonical: string identity is left out, set order sorted.

A hit restores objects by unpickling them, and a library's pickling need not reproduce an object
exactly (scikit-learn's ``Bunch`` drops an attribute, statsmodels' datasets are their own
``__dict__``): the restored object would fingerprint unlike the original, and every later cell
that reads it would miss. So a :class:`~.core.Fingerprinter` may be given :class:`Substitutes`:
for an object restored by a hit, the digest its pickle had when the entry was made, used for as
long as the restored object's own pickle digest is the one it had right after the restore (it is
unchanged).
"""

from __future__ import annotations

import io
import pickle
import sys
from typing import Any, Callable

import xxhash

from ...errors import FingerprintError
from .core import _PACK_LEN, _PICKLE, Fingerprinter, _qualname, _Walk
from .registry import REGISTRY, own_fingerprint

__all__ = ["Substitutes", "takes_pickle_path"]


def _restore_marker(digest: bytes) -> bytes:  # pragma: no cover - never unpickled
    return digest


# A stand-in pickles as a call of this marker, by reference: its module and name are written into
# every pickle that holds one, so they are part of the encoding and must not follow the code when
# it moves. They stay what they were before the package moved under nbcache.key
# (``nbcache.fingerprint._restore_marker``), so caches made then still hit. Pickle checks that the
# name resolves to this very function, so that module name is registered as an alias of this module
# for that check alone (it is not an import path for anything else; nothing is unpickled from it).
_MARKER_MODULE = "nbcache.fingerprint"
_restore_marker.__module__ = _MARKER_MODULE
sys.modules.setdefault(_MARKER_MODULE, sys.modules[__name__])


class _HashingPickler(pickle.Pickler):
    """Pickles into the hasher, keeping nbcache's own encodings for code, arrays and frames.

    One pickler serves many values in turn (:meth:`use`): making one costs more than pickling
    a small object, and a list of 10,000 instances is hashed object by object.
    """

    def __init__(self, w: _Walk):
        self.file = _HasherFile(w.update)
        super().__init__(self.file, protocol=5, buffer_callback=self._buffer)
        self.w = w
        self.root: Any = None

    def use(self, w: _Walk) -> _HashingPickler:
        self.w = w
        self.file._update = w.update
        self.clear_memo()
        return self

    def dump(self, obj: Any) -> None:
        self.root = obj
        super().dump(obj)

    def _buffer(self, buffer: pickle.PickleBuffer) -> bool:
        # Out-of-band buffers (numpy arrays inside objects) are hashed in place, not copied.
        view = buffer.raw()
        self.w.update(_PACK_LEN(view.nbytes))
        self.w.update(view)
        return False

    def persistent_id(self, obj: Any) -> Any:
        # What pickle encodes beyond the value, made canonical. The identity of a string is not
        # part of its value, yet pickle's memo encodes it, and unpickling interns attribute
        # names: an object restored from the cache would fingerprint unlike the original (seen
        # with statsmodels results). A fresh bytes object per string is never memoized. A set's
        # order follows string hashes, which differ in every new process: sort its elements.
        t = obj.__class__
        if t is str:
            return obj.encode("utf-8", "surrogatepass")
        if t is set or t is frozenset:
            return (t is frozenset, sorted(self.w.fp.digest(x) for x in obj))
        return None

    def reducer_override(self, obj: Any) -> Any:
        if obj is self.root or obj is _restore_marker:
            return NotImplemented  # the value itself is pickled; the marker, by reference
        stand_in = REGISTRY.kind(obj).stand_in
        if stand_in is None and callable(obj) and getattr(obj, "__wrapped__", None) is not None:
            # A wrapper (lru_cache, a decorator class) pickles by name only, whatever its kind;
            # its fingerprint covers the wrapped code.
            stand_in = own_fingerprint
        if stand_in is None:
            return NotImplemented
        return _restore_marker, (stand_in(self.w.fp, obj),)


class _HasherFile(io.RawIOBase):
    def __init__(self, update: Callable[[Any], None]):
        self._update = update

    def write(self, data: Any) -> int:
        self._update(data)
        return len(data)


def _pickled(w: _Walk, v: Any) -> None:
    if w.remember(v):
        return
    w.tag(_PICKLE)
    hasher = xxhash.xxh3_128()
    inner = _Walk(w.fp, hasher)
    inner.text(_qualname(type(v)))
    pool = w.fp._picklers
    pickler = pool.pop().use(inner) if pool else _HashingPickler(inner)
    try:
        pickler.dump(v)
    except FingerprintError:
        raise
    except Exception as exc:
        raise FingerprintError(
            f"cannot fingerprint a value of type {type(v).__qualname__}: {exc}",
            type_name=type(v).__qualname__,
        ) from exc
    else:
        pool.append(pickler)  # a pickler that failed midway is not reused
    digest = hasher.digest()
    substitutes = w.fp.substitutes
    if substitutes is not None:
        digest = substitutes.apply(v, digest)
    if id(v) == w.fp._wanted:
        w.fp._found = digest
    w.blob(digest)


def takes_pickle_path(value: Any) -> bool:
    """Whether ``value`` (at the top of a fingerprint) is encoded through pickle, roughly: False
    for the types with an encoding of their own (which a pickle round trip keeps exactly)."""
    return REGISTRY.kind(value).pickled


class Substitutes:
    """Pickle digests of restored objects that stand for the originals' (see the module doc).

    Holds the objects themselves (so their ids stay theirs); :meth:`prune` drops those no longer
    in the namespace.
    """

    def __init__(self) -> None:
        self._by_id: dict[int, tuple[Any, bytes, bytes]] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def add(self, obj: Any, original: bytes) -> None:
        """``obj`` was just restored from an entry that recorded ``original`` as its digest."""
        self._by_id.pop(id(obj), None)
        restored = Fingerprinter().pickle_digest(obj)
        if restored is not None and restored != original:
            self._by_id[id(obj)] = (obj, restored, original)

    def apply(self, obj: Any, digest: bytes) -> bytes:
        found = self._by_id.get(id(obj))
        if found is not None and found[0] is obj and found[1] == digest:
            return found[2]
        return digest

    def prune(self, alive: Any) -> None:
        """Keep only the objects that are values of ``alive`` (a namespace)."""
        if self._by_id:
            ids = {id(v) for v in alive.values()}
            for key in [k for k in self._by_id if k not in ids]:
                del self._by_id[key]
