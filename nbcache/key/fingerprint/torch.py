"""torch: tensors by their bytes and layout; modules and optimizers by the tensors they hold.

torch's own pickle of a tensor names its storage by memory address (and ``torch.save`` writes a
random id), so a tensor fingerprinted through pickle would differ in every kernel. Here:

- a tensor is its class, dtype, device type, layout, ``requires_grad``, shape and strides, then
  its bytes: in memory order, without a copy, when it covers its memory densely (contiguous,
  transposed, permuted), else a contiguous copy. Its ``.grad`` and Python attributes follow.
  A tensor on another device (CUDA) is copied to the host in chunks to be hashed, so a key never
  needs the device's memory twice; the device index is not part of the key, its type is.
  Sparse, quantized and nested tensors are their component tensors; a meta tensor has no bytes;
- an ``nn.Module`` is its class plus what it pickles as (its ``__dict__``: ``training``,
  parameters, buffers, submodules, hooks, your attributes), walked, so a parameter shared by two
  modules (tied weights) encodes once and then as a reference, as it pickles. Hooks count by
  their order, not by their handle ids (a per-process counter);
- an optimizer is its class, ``defaults``, ``param_groups`` and per-parameter ``state``; an
  LR scheduler is a plain instance of its class (its ``__dict__`` holds the optimizer).

Subclasses defined in a notebook (``class Net(nn.Module)``) get these encodings as long as they
pickle as torch's classes do; one that overrides pickling goes through pickle, where its tensors
still count by the encoding above. A tensor subclass from another library goes through pickle
too, where its storage counts by its bytes.
"""

from __future__ import annotations

from typing import Any

import torch

from ...errors import FingerprintError
from .code import _code_like_digest
from .core import _OPTIMIZER, _TENSOR, _TORCH_MODULE, _PACK_LEN, _Walk
from .registry import REGISTRY, Kind, _library

__all__: list[str] = []  # encoders registered with the registry; nothing to import from here

# A tensor on a device is copied to the host this many bytes at a time to be hashed.
_CHUNK = 64 << 20
_UNINITIALIZED: Any = getattr(torch.nn.parameter, "UninitializedTensorMixin")
_HANDLE: Any = torch.utils.hooks.RemovableHandle
_PICKLING = ("__reduce_ex__", "__reduce__", "__getstate__", "__setstate__")


def _tensor_value(w: _Walk, t: Any) -> None:
    if w.remember(t):
        return
    _tensor(w, t)


def _class(w: _Walk, cls: type) -> None:
    # torch's own classes by name: a tensor's fingerprint does not change with torch's version.
    if _library(cls) == "torch":
        w.text(f"{cls.__module__}.{cls.__qualname__}")
    else:
        w.update(_code_like_digest(w.fp, cls))


def _tensor(w: _Walk, t: Any) -> None:
    w.tag(_TENSOR)
    _class(w, type(t))
    if isinstance(t, _UNINITIALIZED):  # a lazy module's: no shape yet
        w.text("uninitialized")
        w.value(bool(t.requires_grad))
        return
    w.text(str(t.dtype))
    w.text(t.device.type)
    w.text(str(t.layout))
    w.value(bool(t.requires_grad))
    layout = t.layout
    if t.is_nested:  # no shape of its own: its component tensors
        w.text("nested")
        w.value(list(t.unbind()))
        w.value(dict(t.__dict__))
        return
    w.value(tuple(t.shape))
    if layout is torch.strided:
        _strided(w, t)
    elif layout is torch.sparse_coo:
        w.value(bool(t.is_coalesced()))
        _tensor(w, t._indices())
        _tensor(w, t._values())
    elif layout in (torch.sparse_csr, torch.sparse_bsr):
        _tensor(w, t.crow_indices())
        _tensor(w, t.col_indices())
        _tensor(w, t.values())
    elif layout in (torch.sparse_csc, torch.sparse_bsc):
        _tensor(w, t.ccol_indices())
        _tensor(w, t.row_indices())
        _tensor(w, t.values())
    else:
        raise FingerprintError(f"cannot fingerprint a tensor with layout {layout}", type_name=type(t).__qualname__)
    # .grad of a non-leaf tensor is None unless it retains it (and asking warns).
    w.value(t.grad if t.is_leaf or t.retains_grad else None)
    w.value(dict(t.__dict__))


def _strided(w: _Walk, t: Any) -> None:
    w.value(tuple(t.stride()))
    if t.is_quantized:
        scheme = t.qscheme()
        w.text(str(scheme))
        if scheme in (torch.per_tensor_affine, torch.per_tensor_symmetric):
            w.value((float(t.q_scale()), int(t.q_zero_point())))
        else:
            w.value(int(t.q_per_channel_axis()))
            _tensor(w, t.q_per_channel_scales())
            _tensor(w, t.q_per_channel_zero_points())
        t = t.int_repr()
    w.value((bool(t.is_conj()), bool(t.is_neg())))
    if t.device.type == "meta":
        return  # shape and dtype are all a meta tensor has
    t = t.detach().resolve_conj().resolve_neg()
    _raw(w, _dense(t))


def _dense(t: Any) -> Any:
    """``t`` itself if it is contiguous, else a permutation of it that is (so its memory holds
    exactly its elements), else a contiguous copy. Which one is a function of shape and strides,
    which the encoding already holds."""
    if t.is_contiguous():
        return t
    dims = sorted(range(t.dim()), key=lambda d: -t.stride(d))
    permuted = t.permute(dims)
    return permuted if permuted.is_contiguous() else t.contiguous()


def _raw(w: _Walk, t: Any) -> None:
    flat = t.reshape(-1)  # a view: t is contiguous
    nbytes = flat.numel() * flat.element_size()
    if flat.device.type == "cpu":
        w.blob(memoryview(flat.view(torch.uint8).numpy()) if nbytes else b"")
        return
    w.update(_PACK_LEN(nbytes))
    step = max(1, _CHUNK // max(1, flat.element_size()))
    for start in range(0, flat.numel(), step):
        w.update(memoryview(flat[start : start + step].cpu().view(torch.uint8).numpy()))


def _storage(w: _Walk, s: Any) -> None:
    """A storage (what a tensor subclass from elsewhere pickles its data as): its bytes."""
    if w.remember(s):
        return
    w.tag(_TENSOR)
    _class(w, type(s))
    if isinstance(s, torch.TypedStorage):
        w.text(str(s.dtype))
        s = s.untyped()
    w.text(s.device.type)
    if s.device.type == "meta":
        w.length(s.nbytes())
        return
    _raw(w, torch.empty(0, dtype=torch.uint8, device=s.device).set_(s))


def _module(w: _Walk, m: Any) -> None:
    if w.remember(m):
        return
    w.tag(_TORCH_MODULE)
    w.update(_code_like_digest(w.fp, type(m)))
    w.value(_without_hook_ids(m.__getstate__()))  # Module.__getstate__: the __dict__ as it pickles


def _without_hook_ids(state: dict[str, Any]) -> dict[str, Any]:
    """The module's state with its hooks' handle ids (a counter shared by the whole process, so
    they depend on how many hooks were made before) replaced by their order in the module."""
    hooks = [key for key, value in state.items() if "hooks" in key and isinstance(value, dict)]
    ids = sorted({i for key in hooks for i in state[key] if isinstance(i, int)})
    if not ids:
        return state
    rank = {i: n for n, i in enumerate(ids)}
    out = dict(state)
    for key in hooks:
        out[key] = [(rank.get(i, i), hook) for i, hook in state[key].items()]
    for key, value in state.items():
        if isinstance(value, _HANDLE):
            out[key] = ("handle", rank.get(value.id))
    return out


def _optimizer(w: _Walk, opt: Any) -> None:
    if w.remember(opt):
        return
    w.tag(_OPTIMIZER)
    w.update(_code_like_digest(w.fp, type(opt)))
    state = opt.__getstate__()
    w.value(state["defaults"])
    w.value(state["param_groups"])  # the parameters first: the state refers back to them
    w.value(dict(state["state"]))


def _pickles_as(base: type, kind: Kind) -> Any:
    """The kind for subclasses of ``base`` that pickle exactly as ``base`` does (no pickling
    hook of their own, no slots), wherever they are defined; None for the others."""

    def decide(t: type) -> Kind | None:
        if _library(t) != "torch":
            if any(getattr(t, name, None) is not getattr(base, name, None) for name in _PICKLING):
                return None
            if any("__slots__" in vars(c) for c in t.__mro__ if c not in base.__mro__):
                return None
        return kind

    return decide


_TENSOR_KIND = Kind(_tensor_value)
REGISTRY.register_base(torch.Tensor, _TENSOR_KIND)
REGISTRY.register_base(torch.UntypedStorage, Kind(_storage))
REGISTRY.register_base(torch.TypedStorage, Kind(_storage))
REGISTRY.register_subclasses(torch.nn.Module, _pickles_as(torch.nn.Module, Kind(_module)))
REGISTRY.register_subclasses(torch.optim.Optimizer, _pickles_as(torch.optim.Optimizer, Kind(_optimizer)))
