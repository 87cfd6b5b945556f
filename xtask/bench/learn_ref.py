"""`cargo xtask bench learn`, PyTorch side: the reference's INR classification loop on exported INRs.

    .venv/bin/python xtask/bench/learn_ref.py <export dir> <seed> <steps> <eval_every> <metrics.jsonl>
        [--model hnp|nft] [--width 128] [--lr 1e-3] [--warmup 100] [--log-every 50]
        [--head-init torch|tch]

<export dir> is what `nfn export-inrs` writes: train/val/test `.npz` (W<l>, b<l>), `<split>_labels.npy`
and `train_order_s<seed>.npy`, the rows our trainer draws at each step, so both sides see the same
batches in the same order. The model is the reference's NFN-HNP classifier as `layers_ref.classifier`
composes it from the package's layers (Fourier 128 scale 3, 3 x HNPLinear `width`, ReLU, channel
dropout 0.1, HNPPool, MLP 1000-1000-10 with dropout 0.1). `--model nft` is our NFT classifier
reconstructed from the package's layers (the reference releases no NFT model): Gaussian Fourier
(width/2, scale 3), LearnedPosEmbedding, 2 pre-LN NFT blocks (`layers_ref.Block`, 4 heads, ff x2,
dropout 0.1), the Perceiver read-out to 4 latents of the same width, their mean, MLP 256-10 with
dropout 0.1. `--head-init tch` draws the MLP head's weights as our `MlpHead` does (LibTorch's
`nn::linear` default, Kaiming uniform with gain sqrt 2: bound sqrt(6 / fan_in)) instead of PyTorch's
`nn.Linear` default (bound 1 / sqrt(fan_in)); the biases are the same either way. The loop is classify_siren's: Adam, a
LambdaLR warm-up min(1, step / warmup) then constant, cross-entropy, the best validation accuracy's
weights kept and tested at the end. It writes records in the format of our runs' metrics.jsonl
(train loss every `log_every` steps; val accuracy in % and mean loss every `eval_every` steps and
at the last; test of the best) and prints one JSON summary line. 2 threads.
"""
import copy
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from nfn.common import WeightSpaceFeatures, network_spec_from_wsfeat

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from layers_ref import Block, CrossAttnReadout, Seq, classifier  # noqa: E402  (sets 2 threads)
from nfn import layers as L  # noqa: E402
from torch import nn  # noqa: E402


DEFAULTS = {"--model": "hnp", "--width": "128", "--lr": "1e-3", "--warmup": "100", "--log-every": "50",
            "--head-init": "torch"}


def options(argv, defaults=None):
    """(the positional arguments, `defaults` updated by the `--name value` pairs of `argv`); with
    `defaults` empty, every `--name` but `--params` takes a value."""
    defaults = DEFAULTS if defaults is None else defaults
    opts, rest, i = dict(defaults), [], 0
    while i < len(argv):
        if argv[i] in opts or (not defaults and argv[i].startswith("--") and argv[i] != "--params"):
            opts[argv[i]] = argv[i + 1]
            i += 2
        else:
            rest.append(argv[i])
            i += 1
    return rest, opts


def nft_classifier(spec, c, blocks=2, heads=4, latents=4, hidden=256):
    """Our NFT classifier's shape from the package's layers (see the module docs)."""
    trunk = Seq(L.GaussianFourierFeatureTransform(spec, 1, mapping_size=c // 2, scale=3),
                L.LearnedPosEmbedding(spec, c), *[Block(spec, c, heads, 2, 0.1) for _ in range(blocks)],
                L.FlattenWeights(spec))
    readout = CrossAttnReadout(c, m=latents, d=c)
    head = nn.Sequential(nn.Linear(c, hidden), nn.ReLU(), nn.Dropout(0.1), nn.Linear(hidden, 10))
    mods = nn.ModuleList([trunk, readout, head])
    return (lambda x: head(readout(trunk(x)).mean(1))), mods


def load_split(folder, name):
    arrays = np.load(os.path.join(folder, f"{name}.npz"))
    layers = len([k for k in arrays.files if k.startswith("W")])
    ws = [torch.from_numpy(arrays[f"W{l}"]) for l in range(layers)]
    bs = [torch.from_numpy(arrays[f"b{l}"]) for l in range(layers)]
    labels = torch.from_numpy(np.load(os.path.join(folder, f"{name}_labels.npy")))
    return ws, bs, labels


def rows(split, idx):
    ws, bs, labels = split
    return WeightSpaceFeatures([w[idx] for w in ws], [b[idx] for b in bs]), labels[idx]


def evaluate(f, mods, split, batch=256):
    mods.eval()
    n = len(split[2])
    correct, loss = 0, 0.0
    with torch.no_grad():
        for start in range(0, n, batch):
            x, y = rows(split, torch.arange(start, min(start + batch, n)))
            out = f(x)
            loss += F.cross_entropy(out, y, reduction="sum").item()
            correct += (out.argmax(-1) == y).sum().item()
    mods.train()
    return 100.0 * correct / n, loss / n


def main():
    args, opts = options(sys.argv[1:])
    folder, seed, steps, eval_every, out = args[0], int(args[1]), int(args[2]), int(args[3]), args[4]
    width, lr = int(opts["--width"]), float(opts["--lr"])
    warmup, log_every = int(opts["--warmup"]), int(opts["--log-every"])
    train, val, test = (load_split(folder, s) for s in ("train", "val", "test"))
    order = torch.from_numpy(np.load(os.path.join(folder, f"train_order_s{seed}.npy")))
    if order.shape[0] < steps:
        raise SystemExit(f"{folder}: train_order_s{seed}.npy holds {order.shape[0]} steps, not {steps}")
    torch.manual_seed(seed)
    spec = network_spec_from_wsfeat(rows(train, torch.arange(1))[0], set_all_dims=True)
    if opts["--model"] == "nft":
        f, mods = nft_classifier(spec, width)
    else:
        f, mods = classifier(spec, "hnp", width)
    if opts["--head-init"] == "tch":
        for lin in (m for m in mods[-1].modules() if isinstance(m, nn.Linear)):
            nn.init.kaiming_uniform_(lin.weight, nonlinearity="relu")
    elif opts["--head-init"] != "torch":
        raise SystemExit(f"--head-init {opts['--head-init']}: expected torch or tch")
    mods.train()
    opt = torch.optim.Adam(mods.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: min(1.0, i / warmup) if warmup > 0 else 1.0)
    best_acc, best_step, best_state = -1.0, 0, None
    t0 = time.perf_counter()
    with open(out, "w") as log:
        def record(**r):
            log.write(json.dumps(r) + "\n")
            log.flush()

        for step in range(steps):
            x, y = rows(train, order[step])
            opt.zero_grad(True)
            loss = F.cross_entropy(f(x), y)
            loss.backward()
            opt.step()
            sched.step()
            # as our trainer counts it: wall time since the start, earlier validations included
            train_seconds = time.perf_counter() - t0
            done = step + 1
            if done % log_every == 0:
                record(split="train", step=done, loss=loss.item(), lr=sched.get_last_lr()[0])
            if done % eval_every == 0 or done == steps:
                acc, vloss = evaluate(f, mods, val)
                record(split="val", step=done, accuracy=acc, loss=vloss, count=len(val[2]))
                if acc > best_acc:
                    best_acc, best_step, best_state = acc, done, copy.deepcopy(mods.state_dict())
        mods.load_state_dict(best_state)
        test_acc, test_loss = evaluate(f, mods, test)
        record(split="test", step=best_step, accuracy=test_acc, loss=test_loss, count=len(test[2]))
    print(json.dumps({"seed": seed, "steps": steps, "best_step": best_step, "best_val_accuracy": best_acc,
                      "test_accuracy": test_acc, "test_loss": test_loss, "train_seconds": train_seconds,
                      "params": sum(p.numel() for p in mods.parameters())}))


if __name__ == "__main__":
    main()
