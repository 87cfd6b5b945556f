"""Side-by-side SIREN fitting benchmark, PyTorch side (run by `cargo xtask bench fit`).

    .venv/bin/python xtask/bench/fit_ref.py <mode: loop|vmap|vmap-recipe> <n> <steps> [lr]
        [--final F] [--target DB] [--device cpu|cuda|cuda:N] [--test] [--save sirens.npz]

Fits SIRENs 2-32-32-1 (omega_0 = 30, the reference init, design.md §6.1) to the first n FashionMNIST
training images scaled to [-1, 1], full batch over the 28x28 grid, Adam, and prints one JSON line:
{"mode", "n", "steps", "seconds", "inrs_per_s", "mean_psnr", "min_psnr"}. PSNR is on the [-1, 1]
range (10 log10(4 / mse)). "loop" fits one plain nn.Module at a time; "vmap" fits all n at once with
torch.func.stack_module_state + vmap(functional_call), each SIREN with its own loss term and Adam state.
"vmap-recipe" is vmap running nfn-rs's fitting recipe (`SirenFitConfig`): Adam whose learning rate
follows a cosine from lr to lr * F over `steps` (`--final`, default 0.1), each SIREN leaving the
batch once its PSNR reaches `--target` dB (default 40) or at the last step, written from that
recipe's description (the same Adam formulas, one step count for the SIRENs still fitting), so that
its row against `vmap` is the recipe's gain and ours against it the implementation's. Its "steps" is
the mean over SIRENs of the steps each took.
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


def vmap_sirens(n):
    """n fresh SIRENs stacked for vmap: (params detached from the modules, buffers, the batched
    forward `f(params, buffers, xs)` -> [n, pixels])."""
    from torch.func import functional_call, stack_module_state, vmap

    models = [Siren() for _ in range(n)]
    params, buffers = stack_module_state(models)
    base = copy.deepcopy(models[0]).to("meta")
    batched = vmap(lambda p, b, x: functional_call(base, (p, b), (x,)), in_dims=(0, 0, None))
    return {k: v.detach() for k, v in params.items()}, buffers, batched


def fit_vmap(targets, steps, lr):
    xs = grid()
    params, buffers, batched = vmap_sirens(len(targets))
    params = {k: v.requires_grad_(True) for k, v in params.items()}
    opt = torch.optim.Adam(params.values(), lr=lr)
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        mse = ((batched(params, buffers, xs) - targets) ** 2).mean(dim=1)
        mse.sum().backward()
        opt.step()
    with torch.no_grad():
        mse = ((batched(params, buffers, xs) - targets) ** 2).mean(dim=1)
    return [psnr(m) for m in mse.tolist()], params


def fit_vmap_recipe(targets, steps, lr, final, target_db):
    """Our recipe under vmap: cosine learning rate, per-SIREN early stop, finished SIRENs dropped."""
    xs = grid()
    params, buffers, batched = vmap_sirens(len(targets))
    m = {k: torch.zeros_like(v) for k, v in params.items()}
    v2 = {k: torch.zeros_like(v) for k, v in params.items()}
    target_mse = 4.0 / 10 ** (target_db / 10)
    n = len(targets)
    psnrs, took = [0.0] * n, [steps] * n
    active = list(range(n))  # the SIREN of each row
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    for t in range(steps + 1):
        leaves = {k: p.requires_grad_(True) for k, p in params.items()}
        mse = ((batched(leaves, buffers, xs) - targets) ** 2).mean(dim=1)
        values = mse.tolist()
        keep = []
        for row, (i, e) in enumerate(zip(active, values)):
            psnrs[i] = psnr(e)
            if t == steps or not math.isfinite(e) or e <= target_mse:
                took[i] = t
            else:
                keep.append(row)
        if not keep:
            break
        grads = dict(zip(leaves, torch.autograd.grad(mse.sum(), list(leaves.values()))))
        with torch.no_grad():
            if len(keep) < len(active):
                rows = torch.tensor(keep)
                params = {k: p.detach().index_select(0, rows) for k, p in params.items()}
                grads = {k: g.index_select(0, rows) for k, g in grads.items()}
                m = {k: x.index_select(0, rows) for k, x in m.items()}
                v2 = {k: x.index_select(0, rows) for k, x in v2.items()}
                targets = targets.index_select(0, rows)
                active = [active[r] for r in keep]
            cos = 0.5 * (1 + math.cos(math.pi * t / steps))
            rate = lr * (final + (1 - final) * cos)
            bc1, bc2 = 1 - beta1 ** (t + 1), 1 - beta2 ** (t + 1)
            for k, g in grads.items():
                m[k].mul_(beta1).add_(g, alpha=1 - beta1)
                v2[k].mul_(beta2).addcmul_(g, g, value=1 - beta2)
                params[k] = params[k].detach() - m[k] / ((v2[k] / bc2).sqrt() + eps) * (rate / bc1)
    return psnrs, sum(took) / n


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
    final, args = take_flag(args, "--final", True)
    target_db, args = take_flag(args, "--target", True)
    mode, n, steps = args[0], int(args[1]), int(args[2])
    lr = float(args[3]) if len(args) > 3 else 1e-3
    torch.manual_seed(0)
    targets = images(n, "test" if test else "train").to(device)
    start = time.perf_counter()
    mean_steps = steps
    if mode == "loop":
        values = fit_loop(targets, steps, lr)
    elif mode == "vmap-recipe":
        final = float(final) if final is not None else 0.1
        target_db = float(target_db) if target_db is not None else 40.0
        values, mean_steps = fit_vmap_recipe(targets, steps, lr, final, target_db)
    else:
        values, params = fit_vmap(targets, steps, lr)
        if save:
            save_npz(save, params)
    seconds = time.perf_counter() - start
    print(json.dumps({"mode": mode, "n": n, "steps": mean_steps, "seconds": seconds, "inrs_per_s": n / seconds,
                      "mean_psnr": sum(values) / len(values), "min_psnr": min(values)}))


if __name__ == "__main__":
    main()
