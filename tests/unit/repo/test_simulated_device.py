"""The simulated accelerator the device tests run on (tests/simulated_device.py): it computes what the CPU computes
and refuses what a CUDA device refuses, so a device test that passes on it is not passing by accident."""

from __future__ import annotations

import pytest
import torch
from simulated_device import DeviceMismatchError, SimulatedTensor, simulated_device


def test_moves_compute_the_cpu_numbers():
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    layer = torch.nn.Linear(3, 2)
    expected = layer(x)
    with simulated_device():
        on_device = x.to("simgpu")
        assert isinstance(on_device, SimulatedTensor) and on_device.device.type == "simgpu"
        layer_dev = torch.nn.Linear(3, 2)
        layer_dev.load_state_dict(layer.state_dict())
        layer_dev.to("simgpu")
        assert all(isinstance(p, SimulatedTensor) for p in layer_dev.parameters())
        out = layer_dev(on_device)
        assert isinstance(out, SimulatedTensor)
        back = out.cpu()
        assert type(back) is torch.Tensor and torch.equal(back, expected)
        assert type(on_device.to("cpu")) is torch.Tensor
        made = torch.arange(3, device="simgpu") + torch.tensor([1, 2, 3], device="simgpu")
        assert isinstance(made, SimulatedTensor) and made.tolist() == [1, 3, 5] and float(made.sum()) == 9


def test_what_a_gpu_refuses_is_refused():
    with simulated_device():
        x = torch.ones(3).to("simgpu")
        with pytest.raises(DeviceMismatchError, match="aten.add"):
            x + torch.ones(3)
        with pytest.raises(DeviceMismatchError, match="aten.mm"):
            x[None] @ torch.ones(3, 2)
        with pytest.raises(DeviceMismatchError):
            torch.where(torch.ones(3, dtype=torch.bool), x, torch.zeros(3))
        with pytest.raises((TypeError, RuntimeError)):
            x.numpy()


def test_what_a_gpu_accepts_is_accepted():
    with simulated_device():
        x = torch.arange(12.0).reshape(3, 4).to("simgpu")
        assert (x * torch.tensor(2.0)).tolist()[1] == [8.0, 10.0, 12.0, 14.0]  # a CPU scalar tensor
        assert x[torch.tensor([0, 2])].cpu()[:, 0].tolist() == [0.0, 8.0]  # a CPU index
        assert x[:, [0, 2]].cpu()[0].tolist() == [0.0, 2.0]
        assert x[torch.tensor([True, False, True])].shape == (2, 4)
        x[:, [0]] = -1.0
        x[x > 10] = 0.5
        assert x.cpu()[:, 0].tolist() == [-1.0, -1.0, -1.0] and x.cpu()[2, 3] == 0.5
        host = torch.zeros(3, 4)
        host.copy_(x)  # a copy between the two
        assert type(host) is torch.Tensor and host[2, 3] == 0.5


def test_tied_weights_stay_tied_as_on_a_gpu():
    """module.to(cuda) keeps a parameter shared by two modules shared (embedding and unembedding); a wrapper tensor
    would be untied (two copies, twice the parameters) unless the move swaps the parameters' contents in place."""
    embed, unembed = torch.nn.Embedding(10, 4), torch.nn.Linear(4, 10, bias=False)
    unembed.weight = embed.weight
    model = torch.nn.ModuleDict({"embed": embed, "unembed": unembed})
    with simulated_device():
        model.to("simgpu")
        assert model.embed.weight is model.unembed.weight and isinstance(model.embed.weight, SimulatedTensor)
        assert sum(p.numel() for p in model.parameters()) == 40
    assert not torch.__future__.get_swap_module_params_on_conversion()  # the global setting is restored


def test_gradients_come_back_through_a_move():
    w = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    with simulated_device():
        (w.to("simgpu") ** 2).sum().backward()
    assert type(w.grad) is torch.Tensor and w.grad.tolist() == [2.0, 4.0, 6.0]


def test_a_model_loaded_inside_it_gives_the_cpu_numbers(tiny_model, tiny_neox_dir):
    """Loading runs the model's lazy init (``with torch.device("meta")``), which the simulator must leave alone."""
    import torch.utils._device

    from saelib.model.loader import load_model

    tokens = torch.randint(5, 1000, (2, 9), generator=torch.Generator().manual_seed(0))
    expected = tiny_model(tokens)
    torch.utils._device._device_constructors.cache_clear()  # as in a fresh process
    with simulated_device():
        model = load_model.__wrapped__(str(tiny_neox_dir), device="simgpu")  # not the per-process cache
        assert all(isinstance(p, SimulatedTensor) for p in model.parameters())
        logits = model(tokens.to("simgpu")).cpu()
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=1e-5)
