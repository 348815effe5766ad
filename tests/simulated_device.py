"""A simulated accelerator for CPU-only test machines: tensors that report ``device="meta"`` but hold real CPU data,
so code written for a GPU runs here with real numbers and fails where a GPU would fail.

Inside ``simulated_device()``, moving a tensor to ``"meta"`` (``.to``, ``device=`` of a factory, ``module.to``)
gives a ``SimulatedTensor``; ops on them compute on the CPU and stay "on the device" until ``.cpu()`` /
``.to("cpu")``. As on a CUDA device: mixing a device tensor with a CPU tensor of one or more dimensions in an op
raises ``DeviceMismatchError`` (a CPU scalar, a CPU index into a device tensor and a copy between the two are
allowed), and ``.numpy()`` of a device tensor raises. The device is ``meta``, not ``cuda``: this PyTorch build
cannot even name a CUDA device in an op, so the simulator checks device-generic code (``x.to(model_device(model))``,
``.cpu()``), not branches on ``device.type == "cuda"``.
"""

from __future__ import annotations

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_map

SIMULATED = torch.device("meta")
aten = torch.ops.aten
# ops that a CUDA device accepts with CPU tensors among their arguments (indices, copies)
MIXING_ALLOWED = {aten.copy_.default, aten._to_copy.default, aten.index.Tensor, aten.index_put_.default,
                  aten.index_put.default, aten._index_put_impl_.default}


class DeviceMismatchError(RuntimeError):
    pass


class SimulatedTensor(torch.Tensor):
    """A CPU tensor (``elem``) that reports itself on the simulated device."""

    @staticmethod
    def __new__(cls, elem: torch.Tensor):
        return torch.Tensor._make_wrapper_subclass(cls, elem.size(), strides=elem.stride(),
                                                   storage_offset=elem.storage_offset(), dtype=elem.dtype,
                                                   layout=elem.layout, device=SIMULATED,
                                                   requires_grad=elem.requires_grad)

    def __init__(self, elem: torch.Tensor):
        self.elem = elem

    def __repr__(self) -> str:
        return f"SimulatedTensor({self.elem!r})"

    def tolist(self):  # works on a CUDA tensor
        return self.elem.tolist()

    def __setitem__(self, index, value):
        # indexing turns Python scalars and lists into tensors made directly on the meta device (their values lost):
        # assign on the CPU data instead, as a CUDA tensor accepts a CPU index or value here
        if self.requires_grad and torch.is_grad_enabled():  # autograd must see it; fails clearly if values are lost
            return super().__setitem__(index, value)
        self.elem[tree_map(_data, index)] = _data(value)

    def __getitem__(self, index):  # lists too become index tensors on the meta device: make them on the CPU
        if isinstance(index, list):
            index = torch.tensor(index)
        elif isinstance(index, tuple):
            index = tuple(torch.tensor(i) if isinstance(i, list) else i for i in index)
        return super().__getitem__(index)

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        raise RuntimeError(f"a simulated device tensor reached {func} outside simulated_device()")


def _data(x):
    return x.elem if isinstance(x, SimulatedTensor) else x


def _device_type(x) -> str | None:
    if isinstance(x, torch.device):
        return x.type
    if isinstance(x, str) and x.split(":")[0] in ("meta", "cpu"):
        return x.split(":")[0]
    return None


def _moved_after(make):
    def constructor(data, *args, device=None, **kwargs):
        t = make(data, *args, **kwargs)
        return t if device is None else t.to(device)

    return constructor


class simulated_device(TorchDispatchMode):
    """``with simulated_device(): ...``: see the module docstring."""

    def __enter__(self):
        # torch.tensor / as_tensor(data, device=...) copy their data to the device below the dispatcher: build them
        # on the CPU and move them through it instead
        self._constructors = {name: getattr(torch, name) for name in ("tensor", "as_tensor")}
        for name, make in self._constructors.items():
            setattr(torch, name, _moved_after(make))
        return super().__enter__()

    def __exit__(self, *exc):
        for name, make in self._constructors.items():
            setattr(torch, name, make)
        return super().__exit__(*exc)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        on_device, on_host, originals = [], [], {}
        moves: set[str] = set()

        def unwrap(x):
            if isinstance(x, SimulatedTensor):
                on_device.append(func)
                originals[id(x.elem)] = x
                return x.elem
            if isinstance(x, torch.Tensor) and x.device.type == "meta":  # made on the real meta device, no data
                if x.numel():
                    raise RuntimeError(f"{func} got a tensor made directly on the meta device, without data; "
                                       "create it on the CPU and move it with .to()")
                on_device.append(func)
                return torch.empty(x.shape, dtype=x.dtype)
            if isinstance(x, torch.Tensor):
                if x.dim() > 0:
                    on_host.append(x)
                originals[id(x)] = x
                return x
            kind = _device_type(x)
            if kind is not None:
                moves.add(kind)
                return torch.device("cpu")
            return x

        a, kw = tree_map(unwrap, (args, kwargs or {}))
        if on_device and on_host and func not in MIXING_ALLOWED:
            raise DeviceMismatchError(f"{func}: a tensor on the simulated device and a CPU tensor "
                                      f"{tuple(on_host[0].shape)} in one op (a GPU would refuse it)")
        out = func(*a, **kw)
        in_place = func.overloadpacket.__name__.endswith("_")
        to_device = "meta" in moves or (bool(on_device) and "cpu" not in moves)

        def wrap(x):
            if not isinstance(x, torch.Tensor):
                return x
            original = originals.get(id(x))  # an input returned as is: an in-place op, or a move to where it is
            if original is not None and (in_place or isinstance(original, SimulatedTensor) == to_device):
                return original
            if original is not None:  # a move that returned its input: a copy, as between real devices
                x = x.clone()
            return SimulatedTensor(x) if to_device else x

        return tree_map(wrap, out)
