"""A simulated accelerator for CPU-only test machines: tensors on a device named ``simgpu`` that hold real CPU data,
so code written for a GPU runs here with real numbers and fails where a GPU would fail.

``simgpu`` is PyTorch's PrivateUse1 backend, registered from Python (``_setup_privateuseone_for_python_backend``):
device guards, autocast and ``torch.simgpu`` exist, but no kernels, and inside ``simulated_device()`` none are
needed: moving a tensor there (``.to``, ``device=`` of a factory, ``module.to``) gives a ``SimulatedTensor``, and
ops on them compute on the CPU and stay "on the device" until ``.cpu()`` / ``.to("cpu")``. As on a CUDA device:
mixing a device tensor with a CPU tensor of one or more dimensions in an op raises ``DeviceMismatchError`` (a CPU
scalar, a CPU index into a device tensor and a copy between the two are allowed), and ``.numpy()`` of a device
tensor raises. Code that branches on ``device.type == "cuda"`` takes its other branch here: this PyTorch build
cannot name a CUDA device in an op, so those branches stay small and are tested with the CUDA calls mocked.
"""

from __future__ import annotations

import torch
import torch.utils._device
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_map

NAME = "simgpu"
aten = torch.ops.aten
# ops that a CUDA device accepts with CPU tensors among their arguments (indices, copies)
MIXING_ALLOWED = {
    aten.copy_.default,
    aten._to_copy.default,
    aten.index.Tensor,
    aten.index_put_.default,
    aten.index_put.default,
    aten._index_put_impl_.default,
}


class DeviceMismatchError(RuntimeError):
    pass


class _Backend:
    """What ``torch.simgpu`` must answer for autocast and device queries."""

    @staticmethod
    def get_amp_supported_dtype() -> list[torch.dtype]:
        return [torch.float16, torch.bfloat16]

    @staticmethod
    def is_available() -> bool:
        return True

    @staticmethod
    def device_count() -> int:
        return 1

    @staticmethod
    def current_device() -> int:
        return 0

    @staticmethod
    def synchronize(device=None) -> None:
        pass

    @staticmethod
    def _is_in_bad_fork() -> bool:
        return False

    @staticmethod
    def manual_seed_all(seed: int) -> None:  # random ops "on the device" draw from the CPU's generator
        pass


def _register() -> None:
    if torch._C._get_privateuse1_backend_name() != NAME:  # once per process
        from torch.utils.backend_registration import _setup_privateuseone_for_python_backend

        _setup_privateuseone_for_python_backend(NAME, backend_module=_Backend())


_register()
SIMULATED = torch.device(NAME, 0)


class SimulatedTensor(torch.Tensor):
    """A CPU tensor (``elem``) that reports itself on the simulated device."""

    @staticmethod
    def __new__(cls, elem: torch.Tensor):
        return torch.Tensor._make_wrapper_subclass(
            cls,
            elem.size(),
            strides=elem.stride(),
            storage_offset=elem.storage_offset(),
            dtype=elem.dtype,
            layout=elem.layout,
            device=SIMULATED,
            requires_grad=elem.requires_grad,
        )

    def __init__(self, elem: torch.Tensor):
        self.elem = elem

    def __repr__(self) -> str:
        return f"SimulatedTensor({self.elem!r})"

    def tolist(self):  # works on a CUDA tensor
        return self.elem.tolist()

    def __setitem__(self, index, value):
        # indexing turns Python scalars and lists into tensors made on the device below the dispatcher, which has no
        # kernels: assign on the CPU data instead, as a CUDA tensor accepts a CPU index or value here
        if self.requires_grad and torch.is_grad_enabled():  # autograd must see it
            return super().__setitem__(index, value)
        self.elem[tree_map(_data, index)] = _data(value)

    def __getitem__(self, index):  # lists too become index tensors made on the device: make them on the CPU
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
    kind = x.type if isinstance(x, torch.device) else x.split(":")[0] if isinstance(x, str) else None
    return kind if kind in (NAME, "cpu") else None


def _moved_after(make):
    def constructor(data, *args, device=None, **kwargs):
        if device is None or _device_type(device) != NAME:  # exactly the original call
            return make(data, *args, **kwargs) if device is None else make(data, *args, device=device, **kwargs)
        return make(data, *args, **kwargs).to(device)

    return constructor


class simulated_device(TorchDispatchMode):
    """``with simulated_device(): ...``: see the module docstring."""

    def __enter__(self):
        # torch.tensor / as_tensor(data, device=...) copy their data to the device below the dispatcher: build them
        # on the CPU and move them through it instead. ``with torch.device(...)`` (a model's lazy init) recognises
        # factories by identity from a cached set: fill it with the originals first
        torch.utils._device._device_constructors()
        self._constructors = {name: getattr(torch, name) for name in ("tensor", "as_tensor")}
        for name, make in self._constructors.items():
            setattr(torch, name, _moved_after(make))
        # module.to(device) replaces a parameter whose new tensor type differs (this wrapper, unlike a CUDA tensor),
        # which unties tied weights (a model's embedding and unembedding): swap contents in place instead
        self._swap = torch.__future__.get_swap_module_params_on_conversion()
        torch.__future__.set_swap_module_params_on_conversion(True)
        return super().__enter__()

    def __exit__(self, *exc):
        for name, make in self._constructors.items():
            setattr(torch, name, make)
        torch.__future__.set_swap_module_params_on_conversion(self._swap)
        return super().__exit__(*exc)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        on_device, on_host, originals = [], [], {}
        moves: set[str] = set()

        def unwrap(x):
            if isinstance(x, SimulatedTensor):
                on_device.append(func)
                originals[id(x.elem)] = x
                return x.elem
            if isinstance(x, torch.Tensor):
                if x.device.type == "cpu" and x.dim() > 0:  # (real meta tensors, as in a model's lazy init, pass)
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
            raise DeviceMismatchError(
                f"{func}: a tensor on the simulated device and a CPU tensor "
                f"{tuple(on_host[0].shape)} in one op (a GPU would refuse it)"
            )
        out = func(*a, **kw)
        in_place = func.overloadpacket.__name__.endswith("_")
        to_device = NAME in moves or (bool(on_device) and "cpu" not in moves)

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
