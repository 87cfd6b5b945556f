"""Side-by-side SIREN fitting benchmark, PyTorch side (run by `cargo xtask bench fit`).

    .venv/bin/python xtask/bench/fit_ref.py <mode: loop|vmap> <n> <steps> [lr] [--device cpu|cuda|cuda:N]
        [--test] [--save sirens.npz]

Fits SIRENs 2-32-32-1 (omega_0 = 30, the reference init, design.md §6.1) to the first n FashionMNIST
training images scaled to [-1, 1], full batch over the 28x28 grid, Adam, and prints one JSON line:
{"mode", "n", "steps", "seconds", "inrs_per_s", "mean_psnr", "min_psnr"}. PSNR is on the [-1, 1]
range (10 log10(4 / mse)). "loop" fits one plain nn.Module at a time; "vmap" fits all n at once with
torch.func.stack_module_state + vmap(functional_call), each SIREN with its own loss term and Adam state.
`--device` (default cpu) makes it the default device, so models, grid and images are created there
(the timing ends with a copy of the PSNRs to the host, which waits for the GPU).
`--test` fits the first n *test* images instead; `--save` (vmap only) writes the fitted SIRENs as a
.npz of weight-space features that `nfn predict --inrs` reads (W<l> [n, 1, out, in], b<l> [n, 1, out]):
PyTorch-fitted INRs, to check a model on INRs from another fitter (docs/fitting.md).
"""
import copy
import gzip
import json
import math
import sys
import time

import numpy as np
import torch
from torch import nn

torch.set_num_threads(2)
OMEGA0 = 30.0


def images(n, split="train"):
    name = "train" if split == "train" else "t10k"
    with gzip.open(f"/usr/share/datasets/fashion-mnist/{name}-images-idx3-ubyte.gz") as f:
        data = np.frombuffer(f.read(), dtype=np.uint8, offset=16).reshape(-1, 28 * 28)[:n]
    return torch.tensor(data, dtype=torch.float32) / 255.0 * 2.0 - 1.0  # [n, 784]


class Siren(nn.Module):
    def __init__(self):
        super().__init__()
        self.l0, self.l1, self.l2 = nn.Linear(2, 32), nn.Linear(32, 32), nn.Linear(32, 1)
        with torch.no_grad():
            self.l0.weight.uniform_(-1 / 2, 1 / 2)
            for layer in (self.l1, self.l2):
                bound = math.sqrt(6 / 32) / OMEGA0
                layer.weight.uniform_(-bound, bound)

    def forward(self, x):
        x = torch.sin(OMEGA0 * self.l0(x))
        x = torch.sin(OMEGA0 * self.l1(x))
        return self.l2(x).squeeze(-1)


def grid():
    r = torch.linspace(-1, 1, 28)
    rr, cc = torch.meshgrid(r, r, indexing="ij")
    return torch.stack([rr.reshape(-1), cc.reshape(-1)], dim=1)  # [784, 2]


def psnr(mse):
    return 10 * math.log10(4.0 / max(mse, 1e-20))


def fit_loop(targets, steps, lr):
    xs, out = grid(), []
    for t in targets:
        model = Siren()
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            loss = ((model(xs) - t) ** 2).mean()
            loss.backward()
            opt.step()
        with torch.no_grad():
            out.append(psnr(((model(xs) - t) ** 2).mean().item()))
    return out


def fit_vmap(targets, steps, lr):
    from torch.func import functional_call, stack_module_state, vmap

    xs = grid()
    models = [Siren() for _ in range(len(targets))]
    params, buffers = stack_module_state(models)
    base = copy.deepcopy(models[0]).to("meta")
    params = {k: v.detach().requires_grad_(True) for k, v in params.items()}
    opt = torch.optim.Adam(params.values(), lr=lr)

    def one(p, b, x):
        return functional_call(base, (p, b), (x,))

    batched = vmap(one, in_dims=(0, 0, None))
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        mse = ((batched(params, buffers, xs) - targets) ** 2).mean(dim=1)
        mse.sum().backward()
        opt.step()
    with torch.no_grad():
        mse = ((batched(params, buffers, xs) - targets) ** 2).mean(dim=1)
    return [psnr(m) for m in mse.tolist()], params


def take_flag(argv, flag, has_value):
    """Take `flag` (and its value) out of the arguments: (value or True/None, the other arguments)."""
    if flag not in argv:
        return None, argv
    i = argv.index(flag)
    if has_value:
        return argv[i + 1], argv[:i] + argv[i + 2:]
    return True, argv[:i] + argv[i + 1:]


def save_npz(path, params):
    """Stacked SIREN parameters as our weight-space features: W<l> [n, 1, out, in], b<l> [n, 1, out]."""
    arrays = {}
    for l, layer in enumerate(("l0", "l1", "l2")):
        arrays[f"W{l}"] = params[f"{layer}.weight"].detach().cpu().unsqueeze(1).numpy()
        arrays[f"b{l}"] = params[f"{layer}.bias"].detach().cpu().unsqueeze(1).numpy()
    np.savez(path, **arrays)


def split_device(argv):
    """Take `--device <name>` (default cpu) out of the arguments: (device, the other arguments)."""
    if "--device" in argv:
        i = argv.index("--device")
        return argv[i + 1], argv[:i] + argv[i + 2:]
    return "cpu", argv


def main():
    device, args = split_device(sys.argv[1:])
    if device != "cpu":
        torch.set_default_device(device)
    test, args = take_flag(args, "--test", False)
    save, args = take_flag(args, "--save", True)
    mode, n, steps = args[0], int(args[1]), int(args[2])
    lr = float(args[3]) if len(args) > 3 else 1e-3
    torch.manual_seed(0)
    targets = images(n, "test" if test else "train").to(device)
    start = time.perf_counter()
    if mode == "loop":
        values = fit_loop(targets, steps, lr)
    else:
        values, params = fit_vmap(targets, steps, lr)
        if save:
            save_npz(save, params)
    seconds = time.perf_counter() - start
    print(json.dumps({"mode": mode, "n": n, "steps": steps, "seconds": seconds, "inrs_per_s": n / seconds,
                      "mean_psnr": sum(values) / len(values), "min_psnr": min(values)}))


if __name__ == "__main__":
    main()
