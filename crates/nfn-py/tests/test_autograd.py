"""nfn-rs models and layers as torch.nn.Modules: forward, gradients into the caller's graph (inputs
and parameters), PyTorch optimizers and DistributedDataParallel."""

import socket

import pytest
import torch

import nfn_rs
from conftest import random_mlp

HNP_MODEL = {"kind": "nfn", "layer": "hnp", "hidden": [8, 8], "fourier": None, "head": {"hidden": [16], "dropout": 0.0}}


def perm_all(ws, seed=3):
    g = torch.Generator().manual_seed(seed)
    out = ws
    for l in range(len(ws.weights) - 1):
        out = nfn_rs.permute_hidden(out, l, torch.randperm(ws.weights[l].shape[2], generator=g))
    return out, g


def test_layer_is_equivariant_from_python():
    ws = random_mlp(n=3, channels=2)
    layer = nfn_rs.Module.layer("hnp", ws, c_out=4)
    g = torch.Generator().manual_seed(5)
    p0, p1 = torch.randperm(8, generator=g), torch.randperm(8, generator=g)
    permuted_in = nfn_rs.permute_hidden(nfn_rs.permute_hidden(ws, 0, p0), 1, p1)
    out = layer(ws)
    permuted_out = nfn_rs.permute_hidden(nfn_rs.permute_hidden(out, 0, p0), 1, p1)
    for a, b in zip(layer(permuted_in), permuted_out):
        for x, y in zip(a, b):
            assert torch.allclose(x, y, atol=1e-5)


def test_layer_gradients_match_finite_differences():
    # An HNP layer is affine in its input and in its parameters, so central differences are exact
    # up to float64 rounding: the input gradients nfn-rs returns must match them.
    ws = random_mlp(n=2, channels=1, dtype=torch.float64)
    layer = nfn_rs.Module.layer("hnp", ws, c_out=3)
    inputs = [t.clone().requires_grad_(True) for t in ws.weights + ws.biases]
    half = len(inputs) // 2
    g = torch.Generator().manual_seed(9)
    probe = [torch.randn(t.shape, generator=g) for t in layer(ws).weights + layer(ws).biases]

    def loss(ts):
        out = layer(nfn_rs.WeightSpace(tuple(ts[:half]), tuple(ts[half:])))
        return sum((o.double() * p.double()).sum() for o, p in zip(out.weights + out.biases, probe))

    value = loss(inputs)
    value.backward()
    assert all(t.grad is not None for t in inputs)
    assert all(p.grad is not None for p in layer.parameters())
    direction = [torch.randn(t.shape, generator=g, dtype=torch.float64) for t in inputs]
    eps = 1e-2
    plus = loss([t.detach() + eps * d for t, d in zip(inputs, direction)])
    minus = loss([t.detach() - eps * d for t, d in zip(inputs, direction)])
    numeric = (plus - minus) / (2 * eps)
    analytic = sum((t.grad * d).sum() for t, d in zip(inputs, direction))
    # The layer computes in float32 inside: a relative error of ~1e-5.
    assert torch.allclose(numeric.detach(), analytic, rtol=1e-4, atol=1e-4), (numeric, analytic)


def test_model_is_invariant_and_trains_with_a_pytorch_optimizer():
    torch.manual_seed(0)
    train = random_mlp(n=64, seed=1)
    # A target the weights determine: the mean output bias of each network.
    target = train.biases[-1].mean(dim=(1, 2)).unsqueeze(1) * 10
    model = nfn_rs.Module.model(HNP_MODEL, train, num_outputs=1, seed=0)
    model.eval()
    permuted, _ = perm_all(train)
    with torch.no_grad():
        assert torch.allclose(model(train), model(permuted), atol=1e-5)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(train), target)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses[::10]


def test_gradients_reach_the_callers_graph():
    # A PyTorch parameter upstream of nfn-rs gets its gradient through the model.
    ws = random_mlp(n=8, seed=2)
    scale = torch.nn.Parameter(torch.tensor(1.5))
    model = nfn_rs.Module.model(HNP_MODEL, ws, num_outputs=2)
    scaled = nfn_rs.WeightSpace(tuple(w * scale for w in ws.weights), ws.biases)
    model(scaled).pow(2).sum().backward()
    assert scale.grad is not None and scale.grad.abs().item() > 0


def test_probegen_model_from_toml():
    ws = random_mlp(n=4, dims=(2, 16, 16, 1))
    toml = 'kind = "probegen"\nnum_probes = 16\n'
    model = nfn_rs.Module.model(toml, ws, num_outputs=10)
    out = model(ws)
    assert out.shape == (4, 10)
    out.sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_save_and_load_roundtrip(tmp_path):
    ws = random_mlp(n=3)
    a = nfn_rs.Module.model(HNP_MODEL, ws, num_outputs=2, seed=1)
    b = nfn_rs.Module.model(HNP_MODEL, ws, num_outputs=2, seed=2)
    a.eval(), b.eval()
    a.save(tmp_path / "m.safetensors")
    b.load(tmp_path / "m.safetensors")
    assert torch.equal(a(ws), b(ws))


def test_bad_config_is_a_value_error():
    ws = random_mlp()
    with pytest.raises(ValueError, match="model config"):
        nfn_rs.Module.model({"kind": "transformer"}, ws, num_outputs=2)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_distributed_data_parallel_single_process():
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0, world_size=1)
    try:
        ws = random_mlp(n=16, seed=4)
        model = nfn_rs.Module.model(HNP_MODEL, ws, num_outputs=1)
        ddp = torch.nn.parallel.DistributedDataParallel(model)
        before = [p.detach().clone() for p in model.parameters()]
        opt = torch.optim.SGD(ddp.parameters(), lr=0.1)
        ddp(ws).pow(2).mean().backward()
        opt.step()
        assert any(not torch.equal(a, p.detach()) for a, p in zip(before, model.parameters()))
    finally:
        dist.destroy_process_group()
