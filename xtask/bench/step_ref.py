"""`cargo xtask bench step`, PyTorch side: whole optimiser steps, data loading included, timed.

    .venv/bin/python xtask/bench/step_ref.py <export dir> <model> <batch> <warmup> <steps>
        [--threads 2] [--lr 1e-3] [--lr-warmup 100] [--weight-decay 0.01] [--width 64] [--seed 0]
    .venv/bin/python xtask/bench/step_ref.py --params <model> [--width 64]

<export dir> is what `nfn export-inrs` writes (see learn_ref.py): `train.npz` and
`train_order_s<seed>.npy`, the rows our trainer draws at each step, so both sides train on the same
batches in the same order. Each step indexes the in-memory training arrays with that step's rows
(as learn_ref.py does), runs the forward, the loss, the backward and the optimiser's step, and
advances the learning-rate schedule (a linear warm-up over `--lr-warmup` steps, then constant, as
LambdaLR in classify_siren). `<warmup>` steps run first, untimed; the next `<steps>` are timed as one
wall-clock window. It prints one JSON line: {"model", "batch", "threads", "warmup", "steps",
"seconds" (the window), "s_per_step", "inrs_per_s", "params", "first_loss", "last_loss"}.
`--params <model>` prints the parameter count only ({"model", "params"}, SIREN 2-32-32-1).

Models:
- `nft`: our NFT INR classifier rebuilt from the package's layers, `learn_ref.nft_classifier` at
  `--width` (default 64; the model of `cargo xtask bench learn --learn-model nft`), cross-entropy,
  Adam (no weight decay, as our AdamW at weight decay 0), dropout 0.1 active.
- `inr2array`: the Inr2Array autoencoder of `xtask/configs/inr2array_fashion_12k.toml`, mirroring
  `crates/inr2array/src/`: the encoder (`encoder.rs`) as `layers_ref.Encoder` composes it from the
  package's layers (GaussFF 32 at scale 3, LearnedPosEmbedding 64, 2 pre-LN NFT blocks of 64
  channels, 4 heads, ff x4, no dropout, cross-attention read-out to 16 latents of width 64); the
  `sitzmann` decoder (`decoder.rs`): one MLP `Linear(64, 64) -> ReLU -> Linear(64, 64) -> ReLU ->
  Linear(64, numel)` per SIREN tensor (W0, b0, W1, b1, W2, b2), its output layer Kaiming-normal / 100
  with biases U(-1/fan_in, 1/fan_in), each latent decoded to one SIREN; the spatial rendering
  (`render.rs`): pixel (r, c) drawn by the SIREN of its 4 x 4 grid cell (cell of x in [-1, 1]:
  round((g-1)(x+1)/2), half-to-even), every cell's pixels padded to the largest cell and evaluated
  as one batched SIREN call, then gathered back; the loss (`autoencoder.rs`): the MSE against the
  input SIRENs rendered on the full 28 x 28 grid (no gradient), computed every step as ours does.
  AdamW, weight decay `--weight-decay` (default 0.01) on every parameter (as our `AdamW`).
"""
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from nfn.common import network_spec_from_wsfeat
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from layers_ref import Encoder, siren_batch  # noqa: E402  (sets 2 threads)
from learn_ref import load_split, nft_classifier, options, rows  # noqa: E402

OMEGA0 = 30.0


def linspace(n):
    """`linspace(-1, 1, n)` as `render.rs` computes it (f64)."""
    return [-1.0] if n == 1 else [-1.0 + 2.0 * i / (n - 1) for i in range(n)]


def pixel_cells(h, w, g):
    """The latent index (row cell * g + column cell) of every pixel, row-major (`render.rs`)."""
    # Python's round() is half-to-even, as Rust's round_ties_even
    cells = lambda n: [int(round((g - 1) * (x + 1.0) / 2.0)) for x in linspace(n)]  # noqa: E731
    rows_, cols = cells(h), cells(w)
    return [r * g + c for r in rows_ for c in cols]


def evaluate_mlp(ws, bs, coords):
    """SIRENs (`ws[l]` [n, out, in], `bs[l]` [n, out]) on coordinates [n, p, 2] -> [n, p, out], as
    `evaluate_mlp` in nfn-weightspace: sin(30 (W x + b)) on every layer but the last."""
    hs = coords
    for l, (w, b) in enumerate(zip(ws, bs)):
        pre = hs.matmul(w.transpose(1, 2)) + b.unsqueeze(1)
        hs = pre if l == len(ws) - 1 else torch.sin(pre * OMEGA0)
    return hs


class SpatialRenderer(nn.Module):
    """`SpatialRenderer` of render.rs: each latent's SIREN on its own cell's pixels."""

    def __init__(self, h, w, g):
        super().__init__()
        self.h, self.w, self.g = h, w, g
        m = g * g
        members = [[] for _ in range(m)]
        for p, cell in enumerate(pixel_cells(h, w, g)):
            members[cell].append(p)
        if any(not ps for ps in members):
            raise SystemExit(f"a {g} x {g} grid leaves empty cells on {h} x {w}")
        p_max = max(len(ps) for ps in members)
        ys, xs = linspace(h), linspace(w)
        coords, gather = [], [0] * (h * w)
        for cell, pixels in enumerate(members):
            for k in range(p_max):
                p = pixels[k] if k < len(pixels) else pixels[0]
                coords.append([ys[p // w], xs[p % w]])
                if k < len(pixels):
                    gather[p] = cell * p_max + k
        self.register_buffer("coords", torch.tensor(coords, dtype=torch.float64).view(m, p_max, 2))
        self.register_buffer("gather", torch.tensor(gather, dtype=torch.int64))

    def forward(self, ws, bs, b):
        """`b * M` SIRENs (latent-major) -> images [b, c, h, w]."""
        m, p_max = self.g * self.g, self.coords.shape[1]
        coords = self.coords.to(ws[0].dtype).unsqueeze(0).expand(b, m, p_max, 2).reshape(b * m, p_max, 2)
        ys = evaluate_mlp(ws, bs, coords)  # [b M, P_max, c]
        c = ys.shape[2]
        ys = ys.view(b, m * p_max, c).index_select(1, self.gather)  # [b, h w, c]
        return ys.view(b, self.h, self.w, c).permute(0, 3, 1, 2)


class HyperMlp(nn.Module):
    """`HyperMlp` of decoder.rs: Linear(d, h) -> ReLU -> Linear(h, h) -> ReLU -> out."""

    def __init__(self, d, h, numel, fan_in):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(d, h), nn.Linear(h, h)  # PyTorch's default, as `torch_linear`
        self.out = nn.Linear(h, numel)
        with torch.no_grad():
            self.out.weight.normal_(0.0, (2.0 / h) ** 0.5 / 100.0)
            self.out.bias.uniform_(-1.0 / fan_in, 1.0 / fan_in)

    def forward(self, z):
        return self.out(F.relu(self.fc2(F.relu(self.fc1(z)))))


class SitzmannDecoder(nn.Module):
    """The `sitzmann` `SpatialDecoder` of decoder.rs: one `HyperMlp` per SIREN tensor, in flatten
    order (W0, b0, W1, b1, ...); each latent -> one flat SIREN -> weights and biases."""

    def __init__(self, dims, d, h):
        super().__init__()
        self.dims = dims  # [(n_out, n_in)] per layer
        tensors = []
        for n_out, n_in in dims:
            tensors += [(n_out * n_in, n_in), (n_out, h)]
        self.heads = nn.ModuleList([HyperMlp(d, h, numel, fan_in) for numel, fan_in in tensors])
        self.sizes = [numel for numel, _ in tensors]

    def forward(self, zs):  # [b, M, D] -> SIRENs of batch b M: ([n, out, in]), ([n, out])
        flat = torch.cat([head(zs) for head in self.heads], -1)  # [b, M, P]
        flat = flat.reshape(-1, sum(self.sizes))
        parts = flat.split(self.sizes, dim=1)
        ws = [parts[2 * l].reshape(-1, n_out, n_in) for l, (n_out, n_in) in enumerate(self.dims)]
        bs = [parts[2 * l + 1] for l in range(len(self.dims))]
        return ws, bs


class Autoencoder(nn.Module):
    """The Inr2Array autoencoder of `autoencoder.rs` (see the module docs)."""

    def __init__(self, spec, dims, c=64, blocks=2, heads=4, ff=4, latents=16, d=64, hidden=64,
                 image=(28, 28)):
        super().__init__()
        self.encoder = Encoder(spec, blocks, c, heads=heads, ff=ff, latents=latents, d=d)
        self.decoder = SitzmannDecoder(dims, d, hidden)
        self.renderer = SpatialRenderer(*image, round(latents ** 0.5))
        self.image = image

    def target(self, x):
        """The input SIRENs rendered on the full grid (`render_siren`), no gradient."""
        h, w = self.image
        with torch.no_grad():
            ys_, xs_ = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
            grid = torch.stack([ys_.reshape(-1), xs_.reshape(-1)], 1)  # [h w, 2]
            b = x.weights[0].shape[0]
            ws = [t.squeeze(1) for t in x.weights]
            bs = [t.squeeze(1) for t in x.biases]
            ys = evaluate_mlp(ws, bs, grid.unsqueeze(0).expand(b, -1, -1))
            return ys.view(b, h, w, -1).permute(0, 3, 1, 2)

    def loss(self, x):
        b = x.weights[0].shape[0]
        ws, bs = self.decoder(self.encoder(x))
        return F.mse_loss(self.renderer(ws, bs, b), self.target(x))


def build(model, spec, dims, opts):
    """(loss of a batch (x, y), the modules, the optimiser's class and keywords)."""
    if model == "nft":
        f, mods = nft_classifier(spec, int(opts.get("--width", "64")))
        return (lambda x, y: F.cross_entropy(f(x), y)), mods, torch.optim.Adam, {}
    if model == "inr2array":
        ae = Autoencoder(spec, dims)
        wd = float(opts.get("--weight-decay", "0.01"))
        return (lambda x, _y: ae.loss(x)), ae, torch.optim.AdamW, {"weight_decay": wd}
    raise SystemExit(f"unknown model {model!r}: expected nft or inr2array")


def siren_dims():
    return [(32, 2), (32, 32), (1, 32)]


def main():
    args, opts = options(sys.argv[1:], {})
    if args and args[0] == "--params":
        torch.manual_seed(0)
        spec = network_spec_from_wsfeat(siren_batch(1), set_all_dims=True)
        _, mods, _, _ = build(args[1], spec, siren_dims(), opts)
        print(json.dumps({"model": args[1], "params": sum(p.numel() for p in mods.parameters())}))
        return
    folder, model = args[0], args[1]
    batch, warmup, steps = int(args[2]), int(args[3]), int(args[4])
    threads = int(opts.get("--threads", "2"))
    lr, lr_warmup = float(opts.get("--lr", "1e-3")), int(opts.get("--lr-warmup", "100"))
    seed = int(opts.get("--seed", "0"))
    torch.set_num_threads(threads)
    train = load_split(folder, "train")
    order = torch.from_numpy(np.load(os.path.join(folder, f"train_order_s{seed}.npy")))
    if order.shape[0] < warmup + steps or order.shape[1] != batch:
        raise SystemExit(f"{folder}: train_order_s{seed}.npy is {tuple(order.shape)}, not at least "
                         f"[{warmup + steps}, {batch}]")
    torch.manual_seed(seed)
    spec = network_spec_from_wsfeat(rows(train, torch.arange(1))[0], set_all_dims=True)
    dims = [tuple(w.shape[-2:]) for w in train[0]]
    loss_fn, mods, optim, kw = build(model, spec, dims, opts)
    mods.train()
    opt = optim(mods.parameters(), lr=lr, **kw)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: min(1.0, i / lr_warmup) if lr_warmup > 0 else 1.0)
    first_loss = last_loss = None
    t0 = time.perf_counter()
    for step in range(warmup + steps):
        x, y = rows(train, order[step])
        opt.zero_grad(True)
        loss = loss_fn(x, y)
        loss.backward()
        opt.step()
        sched.step()
        if step + 1 == warmup:
            t0 = time.perf_counter()
        if step == 0:
            first_loss = loss.item()
    seconds = time.perf_counter() - t0
    last_loss = loss.item()
    print(json.dumps({"model": model, "batch": batch, "threads": threads, "warmup": warmup,
                      "steps": steps, "seconds": seconds, "s_per_step": seconds / steps,
                      "inrs_per_s": batch * steps / seconds,
                      "params": sum(p.numel() for p in mods.parameters()),
                      "first_loss": first_loss, "last_loss": last_loss}))


if __name__ == "__main__":
    main()
