"""Shared fixtures: the `nfn` binary beside the module, and one small INR set fitted by it."""

import json
import os
import subprocess
from pathlib import Path

import pytest
import torch

import nfn_rs

ROOT = Path(__file__).resolve().parents[3]
NFN = Path(os.environ.get("NFN_BIN", ROOT / "target" / "debug" / "nfn"))
FASHION = Path("/usr/share/datasets/fashion-mnist")


def fashion_available() -> bool:
    try:
        nfn_rs.load_images("fashion-mnist", [0])
        return True
    except (FileNotFoundError, ValueError):
        return False


def need_fashion():
    if not fashion_available():
        pytest.skip("FashionMNIST is not on this machine (`cargo xtask setup` installs it)")


def need_nfn():
    if not NFN.exists():
        pytest.skip(f"{NFN} is not built (`cargo build -p nfn-cli` or `cargo xtask test` builds it)")


def nfn(*args: str) -> str:
    """Run the `nfn` binary from the project root; its stdout."""
    out = subprocess.run(
        [str(NFN), *args], cwd=ROOT, capture_output=True, text=True, env={**os.environ, "NFN_MALLOC": "system"}
    )
    assert out.returncode == 0, f"nfn {' '.join(args)} failed: {out.stderr}"
    return out.stdout


@pytest.fixture(scope="session")
def fitted_set(tmp_path_factory):
    """16 FashionMNIST training images (and the matching val/test share) fitted by `nfn fit-inrs`."""
    need_fashion()
    need_nfn()
    out = tmp_path_factory.mktemp("inrs") / "fmnist16"
    nfn("fit-inrs", "--dataset", "fashion-mnist", "--limit", "16", "--out", str(out))
    manifest = json.loads((out / "manifest.json").read_text())
    return out, manifest


@pytest.fixture(scope="session")
def train_inrs(fitted_set):
    path, _ = fitted_set
    return nfn_rs.open_inr_set(path, ["train"]).splits["train"]


def random_mlp(n: int = 4, dims=(2, 8, 8, 3), channels: int = 1, dtype=torch.float32, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    weights = tuple(
        torch.randn(n, channels, dims[l + 1], dims[l], generator=g, dtype=dtype) / dims[l] ** 0.5
        for l in range(len(dims) - 1)
    )
    biases = tuple(
        0.1 * torch.randn(n, channels, dims[l + 1], generator=g, dtype=dtype) for l in range(len(dims) - 1)
    )
    return nfn_rs.WeightSpace(weights, biases)


CLASSIFY = """name = "py_hnp"
[data]
inrs = "{inrs}"
batch_size = 8
eval_batch_size = 16
[model]
kind = "nfn"
layer = "hnp"
hidden = [8]
pool = "hnp"
head = {{ hidden = [16], dropout = 0.0 }}
[trainer]
steps = 6
eval_every = 3
log_every = 1
seed = 1
objective = "cross_entropy"
optim = {{ lr = 1e-3, warmup_steps = 1 }}
"""

EDIT = """name = "py_edit"
task = "inr_editing"
style = "dilate"
images = "{images}"
[data]
inrs = "{inrs}"
batch_size = 8
eval_batch_size = 8
[model]
kind = "nfn"
layer = "np"
hidden = 4
extra_layers = 0
fourier = {{ in_channels = 1, mapping_size = 4, scale = 3.0 }}
[trainer]
steps = 6
eval_every = 3
log_every = 1
optim = {{ lr = 1e-3, warmup_steps = 1 }}
"""


PRETRAIN = """name = "py_ae"
task = "inr2array_pretrain"
[data]
inrs = "{inrs}"
batch_size = 8
eval_batch_size = 8
[model]
image_size = [28, 28]
[model.encoder]
channels = 8
num_blocks = 1
num_heads = 2
ff_factor = 2
num_latents = 4
latent_dim = 8
[model.decoder]
dec_type = "sitzmann"
hidden_dim = 8
[trainer]
steps = 6
eval_every = 3
log_every = 1
optim = {{ lr = 1e-3, warmup_steps = 1, schedule = "cosine" }}
"""


@pytest.fixture(scope="session")
def trained_runs(fitted_set, tmp_path_factory):
    """6-step classification, pretraining and editing runs on the fitted set, by `nfn train`."""
    path, _ = fitted_set
    dir = tmp_path_factory.mktemp("runs")
    runs = dir / "runs"
    out = {}
    for name, text in [("py_hnp", CLASSIFY), ("py_ae", PRETRAIN), ("py_edit", EDIT)]:
        cfg = dir / f"{name}.toml"
        cfg.write_text(text.format(inrs=path, images=FASHION))
        nfn("train", str(cfg), "--runs", str(runs))
        out[name] = (cfg, runs / name)
    return out
