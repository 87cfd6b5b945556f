"""`cargo xtask bench zoo`, PyTorch side: train Small CNN Zoo networks the two ways PyTorch offers.

    .venv/bin/python xtask/bench/zoo_ref.py <loop|vmap|conv> <networks> <steps> [batch=32]

The CNN is the zoo's (design.md §6.3) as `nfn make-zoo` trains it: conv 3x3 stride 2 pad 1,
1 -> 16 -> 16 -> 16 channels, activation and dropout after each conv, global average pooling,
dense 16 -> 10, on FashionMNIST 28 x 28 in [-1, 1]. Per network: activation ReLU or tanh,
dropout in [0, 0.7], optimizer Adam / RMSProp / SGD with a log-uniform learning rate in
[5e-4, 5e-2], L2 in [1e-8, 1e-2] (the published distributions), batch 32 from its own shuffled
order. `loop` trains the networks one after another, each with its own `torch.optim` optimizer
(the reference zoo's way: one training process per network). `vmap` trains all of them at once:
`torch.func.vmap` over `functional_call` with `torch.func.grad`, and the three optimizers as
masked, vectorised updates. `conv` runs only the three grouped convolutions of the same networks
(forward, then the backward to the weights and the hidden inputs), no activation, dropout, loss
or update: the time every implementation built on LibTorch's convolutions pays. Prints one JSON line: CNNs/s (networks finishing `steps` steps per
second of training), CNN-steps/s, and the settings. 2 threads.
"""
import gzip
import json
import math
import sys
import time

import numpy as np
import torch
from torch import nn

torch.set_num_threads(2)
FMNIST = "/usr/share/datasets/fashion-mnist"


def images():
    with gzip.open(f"{FMNIST}/train-images-idx3-ubyte.gz") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
    with gzip.open(f"{FMNIST}/train-labels-idx1-ubyte.gz") as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)
    x = (torch.from_numpy(x.copy()).float() / 255 - 0.5) / 0.5
    return x, torch.from_numpy(y.astype(np.int64))


def hypers(n, seed=0):
    g = np.random.default_rng(seed)
    log = lambda lo, hi: float(np.exp(g.uniform(math.log(lo), math.log(hi))))
    return [dict(act=g.choice(["relu", "tanh"]), dropout=float(g.uniform(0, 0.7)),
                 opt=g.choice(["adam", "rmsprop", "sgd"]), lr=log(5e-4, 5e-2), l2=log(1e-8, 1e-2))
            for _ in range(n)]


class Cnn(nn.Module):
    def __init__(self, act, dropout):
        super().__init__()
        self.c0, self.c1, self.c2 = nn.Conv2d(1, 16, 3, 2, 1), nn.Conv2d(16, 16, 3, 2, 1), nn.Conv2d(16, 16, 3, 2, 1)
        self.dense = nn.Linear(16, 10)
        self.act = torch.relu if act == "relu" else torch.tanh
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        for c in (self.c0, self.c1, self.c2):
            x = self.drop(self.act(c(x)))
        return self.dense(x.mean((2, 3)))


def l2(params, coef):
    return coef * sum((p ** 2).sum() for name, p in params if "weight" in name)


def run_loop(hs, x, y, steps, batch):
    start = time.perf_counter()
    for i, h in enumerate(hs):
        torch.manual_seed(i)
        m = Cnn(h["act"], h["dropout"])
        cls = {"adam": torch.optim.Adam, "rmsprop": torch.optim.RMSprop, "sgd": torch.optim.SGD}[h["opt"]]
        opt = cls(m.parameters(), lr=h["lr"])
        order = torch.randperm(len(x))
        for s in range(steps):
            idx = order[s * batch:(s + 1) * batch]
            loss = nn.functional.cross_entropy(m(x[idx]), y[idx]) + l2(m.named_parameters(), h["l2"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return time.perf_counter() - start


def run_vmap(hs, x, y, steps, batch):
    n = len(hs)
    torch.manual_seed(0)
    base = Cnn("relu", 0.0)
    names = [k for k, _ in base.named_parameters()]
    params = {k: torch.stack([Cnn("relu", 0.0).state_dict()[k] for _ in range(n)]) for k in names}
    relu = torch.tensor([h["act"] == "relu" for h in hs])
    drop = torch.tensor([h["dropout"] for h in hs])
    lr = torch.tensor([h["lr"] for h in hs])
    coef = torch.tensor([h["l2"] for h in hs])
    kinds = {k: torch.tensor([h["opt"] == k for h in hs]) for k in ("adam", "rmsprop", "sgd")}

    def loss_fn(p, xb, yb, is_relu, rate, c, key):
        h = xb
        for k in ("c0", "c1", "c2"):
            h = nn.functional.conv2d(h, p[f"{k}.weight"], p[f"{k}.bias"], stride=2, padding=1)
            h = torch.where(is_relu, torch.relu(h), torch.tanh(h))
            keep = (torch.rand(h.shape, generator=None) >= rate).float()
            h = h * keep / (1 - rate)
        out = h.mean((2, 3)) @ p["dense.weight"].T + p["dense.bias"]
        reg = c * sum((p[k] ** 2).sum() for k in p if "weight" in k)
        return nn.functional.cross_entropy(out, yb) + reg

    grad = torch.func.vmap(torch.func.grad(loss_fn), in_dims=(0, 0, 0, 0, 0, 0, None), randomness="different")
    m1 = {k: torch.zeros_like(v) for k, v in params.items()}
    m2 = {k: torch.zeros_like(v) for k, v in params.items()}
    orders = torch.stack([torch.randperm(len(x)) for _ in range(n)])
    start = time.perf_counter()
    for s in range(steps):
        idx = orders[:, s * batch:(s + 1) * batch]
        g = grad(params, x[idx], y[idx], relu, drop, coef, None)
        with torch.no_grad():
            t = s + 1
            for k in params:
                shape = (n,) + (1,) * (params[k].dim() - 1)
                m1[k].mul_(0.9).add_(g[k], alpha=0.1)
                m2[k].mul_(0.999).addcmul_(g[k], g[k], value=0.001)
                adam = (m1[k] / (1 - 0.9 ** t)) / ((m2[k] / (1 - 0.999 ** t)).sqrt() + 1e-7)
                rms = g[k] / (m2[k].sqrt() + 1e-7)  # RMSProp on the same second moment (cost-equal)
                upd = torch.where(kinds["adam"].view(shape), adam,
                                  torch.where(kinds["rmsprop"].view(shape), rms, g[k]))
                params[k] -= lr.view(shape) * upd
    return time.perf_counter() - start


def run_conv(hs, x, y, steps, batch):
    n = len(hs)
    torch.manual_seed(0)
    shapes = [(16, 1), (16, 16), (16, 16)]
    ws = [(torch.randn(n * o, i, 3, 3) * 0.1).requires_grad_() for o, i in shapes]
    bs = [torch.zeros(n * o, requires_grad=True) for o, _ in shapes]
    orders = torch.stack([torch.randperm(len(x)) for _ in range(n)])
    start = time.perf_counter()
    for s in range(steps):
        idx = orders[:, s * batch:(s + 1) * batch].T.reshape(-1)  # [batch * n], batch-major
        h = x[idx].view(batch, n, 28, 28)
        for w, b in zip(ws, bs):
            h = nn.functional.conv2d(h, w, b, stride=2, padding=1, groups=n)
        torch.autograd.grad(h.sum(), ws + bs)
    return time.perf_counter() - start


def main():
    mode, n, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    batch = int(sys.argv[4]) if len(sys.argv) > 4 else 32
    x, y = images()
    hs = hypers(n)
    seconds = {"loop": run_loop, "vmap": run_vmap, "conv": run_conv}[mode](hs, x, y, steps, batch)
    print(json.dumps({"mode": mode, "networks": n, "steps": steps, "batch": batch,
                      "cnns_per_s": n / seconds, "cnn_steps_per_s": n * steps / seconds,
                      "train_s": seconds}))


if __name__ == "__main__":
    main()
