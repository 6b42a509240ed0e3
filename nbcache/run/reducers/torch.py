"""torch tensors out of band: storage bytes as pickle buffers, restored over the mapped blob.

A tensor is written as its storage plus how it views it (dtype, offset, shape, strides), like
torch's own pickle, but the storage's bytes travel as an out-of-band buffer instead of a
``torch.save`` inside the pickle. One storage object stands for each block of memory in a dump,
so tensors that shared memory (views, tied weights, a parameter and its ``.data``) share it after
a restore, and a parameter referred to twice is one object (pickle's memo). Restored, a tensor
is the same class (``Tensor`` or ``Parameter``) on the same device with the same dtype,
``requires_grad``, ``.grad`` and Python attributes; a CPU tensor lies over the mapped buffer
(copy-on-write: writing to it copies only the pages written).

A device tensor (CUDA) is copied to the host to be written and moved back to its device on
load; an entry holding one that this kernel does not have fails to load with a message naming
the device, which makes the run a miss. Sparse, quantized, nested, meta and conjugate-view
tensors, and tensor subclasses other than ``Parameter``, keep torch's own pickle.

An input tensor the cell changed in place is updated in place on a hit (its data copied into
it), so its views and the names that alias it see the change, as after running the cell.
"""

from __future__ import annotations

import pickle
from typing import Any

import torch

from ...errors import SerializationError
from . import REDUCERS

__all__ = ["reduce_tensor", "update_tensor"]

_PLAIN = (torch.Tensor, torch.nn.Parameter)


class _Storage:
    """One block of tensor memory in a dump: pickled once, as an out-of-band buffer."""

    __slots__ = ("storage",)

    def __init__(self, storage: Any):
        self.storage = storage

    def __reduce__(self) -> Any:
        storage = self.storage
        host = storage if storage.device.type == "cpu" else storage.cpu()
        data: Any = torch.empty(0, dtype=torch.uint8).set_(host).numpy()  # the bytes, not a copy
        return _rebuild_storage, (pickle.PickleBuffer(data), str(storage.device))


def reduce_tensor(t: Any, memo: dict[Any, Any]) -> Any:
    if type(t) not in _PLAIN or t.layout is not torch.strided or t.is_quantized or t.is_nested:
        return None
    if t.is_conj() or t.is_neg() or t.device.type == "meta":
        return None
    storage = t.untyped_storage()
    if storage.nbytes():
        key = ("torch", str(storage.device), storage.data_ptr(), storage.nbytes())
        ref = memo.get(key)
        if ref is None:
            ref = memo[key] = _Storage(storage)
    else:
        ref = _Storage(storage)  # empty storages have no address to tell them apart
    grad = t.grad if t.is_leaf or t.retains_grad else None
    return _rebuild_tensor, (
        ref,
        t.dtype,
        t.storage_offset(),
        tuple(t.shape),
        tuple(t.stride()),
        bool(t.requires_grad),
        type(t) is torch.nn.Parameter,
        grad,
        dict(t.__dict__) or None,
    )


def _rebuild_storage(buffer: Any, device: str) -> Any:
    view = memoryview(buffer)
    if view.readonly:
        buffer = bytearray(view)  # a small buffer kept in the pickle arrives as read-only bytes
    if not view.nbytes:
        storage = torch.UntypedStorage(0)
    else:
        storage = torch.frombuffer(buffer, dtype=torch.uint8).untyped_storage()  # over the buffer
        if storage.data_ptr() % 16:
            # torch's kernels assume their elements' natural alignment (up to 16 bytes); the store
            # aligns buffers (see nbcache.store.frames), a blob of the first layout did not.
            storage = storage.clone()
    if device == "cpu":
        return storage
    try:
        return storage.to(device=torch.device(device))
    except Exception as exc:  # noqa: BLE001 - no such device here (no CUDA): a clear message
        raise SerializationError(f"the entry holds tensors on {device}, which this kernel cannot use ({exc})") from exc


def _rebuild_tensor(
    storage: Any,
    dtype: Any,
    offset: int,
    shape: tuple[int, ...],
    strides: tuple[int, ...],
    requires_grad: bool,
    parameter: bool,
    grad: Any,
    attributes: dict[str, Any] | None,
) -> Any:
    t = torch.empty(0, dtype=dtype, device=storage.device).set_(storage, offset, shape, strides)
    if parameter:
        t = torch.nn.Parameter(t, requires_grad=requires_grad)
    elif requires_grad:
        t.requires_grad_(True)
    if grad is not None:
        t.grad = grad
    if attributes:
        t.__dict__.update(attributes)
    return t


def update_tensor(live: Any, new: Any) -> bool:
    """Copy ``new`` into ``live`` when it has the same class, shape, strides, dtype and device."""
    if type(live) is not type(new) or live.layout is not torch.strided or new.layout is not torch.strided:
        return False
    if (live.shape, live.stride(), live.dtype, live.device) != (new.shape, new.stride(), new.dtype, new.device):
        return False
    if live.requires_grad != new.requires_grad and not live.is_leaf:
        return False
    with torch.no_grad():
        live.copy_(new)
    if live.is_leaf:
        live.requires_grad_(new.requires_grad)
        live.grad = new.grad
    live.__dict__.clear()
    live.__dict__.update(new.__dict__)
    return True


REDUCERS.register(torch.Tensor, reduce_tensor, update=update_tensor)
