"""Side-by-side benchmark, PyTorch reference side: one layer configuration per process.

Run by `cargo xtask bench layers` with the project's .venv (torch 2.11, nfn==0.1.2 from PyPI):
    .venv/bin/python xtask/bench/layers_ref.py <config> <batch> <iters> [--device cpu|cuda|cuda:N]
prints one JSON line: {"config", "batch", "fwd_ms", "fwdbwd_ms", "peak_mb", "params", "fwd_flop",
"fwdbwd_flop"}. The FLOPs of one forward and of one forward+backward are counted by
`torch.utils.flop_counter.FlopCounterMode` (matmuls and convolutions) in a separate pass after the
timed runs and after peak memory is read, so neither is affected.
`--device` (default cpu) makes it the default device, so the model and the data are created there;
on CUDA each timing waits for the GPU.

The models are composed from the reference package's layers with the reference's arguments (the
package ships layers, not the model assemblies); the Rust side builds the same shapes.
"""
import json
import resource
import statistics
import sys
import time

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from nfn.common import WeightSpaceFeatures, network_spec_from_wsfeat
from nfn import layers as L

torch.set_num_threads(2)
DEVICE = "cpu"


def split_device(argv):
    """Take `--device <name>` (default cpu) out of the arguments: (device, the other arguments)."""
    if "--device" in argv:
        i = argv.index("--device")
        return argv[i + 1], argv[:i] + argv[i + 2:]
    return "cpu", argv


def sync():
    if DEVICE.startswith("cuda"):
        torch.cuda.synchronize()


def siren_batch(b, channels=1):
    dims = [2, 32, 32, 1]
    ws = [torch.randn(b, channels, dims[i + 1], dims[i]) for i in range(3)]
    bs = [torch.randn(b, channels, dims[i + 1]) for i in range(3)]
    return WeightSpaceFeatures(ws, bs)


class Seq(nn.Module):
    def __init__(self, *mods):
        super().__init__()
        self.mods = nn.ModuleList(mods)

    def forward(self, x):
        for m in self.mods:
            x = m(x)
        return x


def relu():
    return L.TupleOp(nn.ReLU())


def classifier(spec, kind, width):
    """InvariantNFN as classify_siren's MNIST variants build it: Fourier(128, scale 3) [+ IO enc]
    -> 3 x (equivariant layer -> ReLU -> ChannelDropout 0.1) -> HNPPool -> MLP 1000-1000-10, dropout 0.1."""
    mods = [L.GaussianFourierFeatureTransform(spec, 1, mapping_size=128, scale=3)]
    c = 256
    if kind == "np":
        enc = L.IOSinusoidalEncoding(spec, max_freq=3, num_bands=3, enc_layers=False)
        mods.append(enc)
        c += 2 * 3 + 1
    for _ in range(3):
        layer = L.NPLinear(spec, c, width, io_embed=False) if kind == "np" else L.HNPLinear(spec, c, width)
        mods += [layer, relu(), L.ChannelDropout(0.1)]
        c = width
    trunk = Seq(*mods)
    pool = L.HNPPool(spec)
    n_pool = L.HNPPool.get_num_outs(spec) * width
    head = nn.Sequential(nn.Flatten(), nn.Linear(n_pool, 1000), nn.ReLU(), nn.Dropout(0.1),
                         nn.Linear(1000, 1000), nn.ReLU(), nn.Dropout(0.1), nn.Linear(1000, 10))
    return lambda x: head(pool(trunk(x))), nn.ModuleList([trunk, head])


class Block(nn.Module):
    """Pre-LN NFT block (design.md §4.3), from the package's NPAttention, SimpleLayerNorm, Pointwise."""

    def __init__(self, spec, c, heads, ff, dropout):
        super().__init__()
        self.ln1 = L.SimpleLayerNorm(spec, c)
        self.attn = L.NPAttention(spec, c, heads, dropout)
        self.drop = L.TupleOp(nn.Dropout(dropout))
        self.ln2 = L.SimpleLayerNorm(spec, c)
        self.ff = Seq(L.Pointwise(spec, c, ff * c), L.TupleOp(nn.GELU()), L.Pointwise(spec, ff * c, c),
                      L.TupleOp(nn.Dropout(dropout)))

    def forward(self, x):
        x = x + self.drop(self.attn(self.ln1(x)))
        return x + self.ff(self.ln2(x))


class CrossAttnReadout(nn.Module):
    """The Perceiver read-out of the reference encoder (design.md §4.5): depth 1, M learned latents of
    width D, one cross-attention head of width D (no q/kv bias), pre-LayerNorm on latents and tokens,
    then a pre-LN GEGLU feed-forward (D -> 8D -> 4D -> D), both residual. Written from the math with
    plain torch ops (the reference vendors perceiver-pytorch; this is the same computation)."""

    def __init__(self, c, m=16, d=256):
        super().__init__()
        self.latents = nn.Parameter(torch.randn(m, d))
        self.ln_q, self.ln_ctx, self.ln_ff = nn.LayerNorm(d), nn.LayerNorm(c), nn.LayerNorm(d)
        self.to_q = nn.Linear(d, d, bias=False)
        self.to_kv = nn.Linear(c, 2 * d, bias=False)
        self.out = nn.Linear(d, d)
        self.ff_in, self.ff_out = nn.Linear(d, 8 * d), nn.Linear(4 * d, d)
        self.d = d

    def forward(self, tokens):  # [B, N, C] -> [B, M, D]
        x = self.latents.expand(tokens.shape[0], -1, -1)
        q = self.to_q(self.ln_q(x))
        k, v = self.to_kv(self.ln_ctx(tokens)).chunk(2, dim=-1)
        att = torch.softmax(q @ k.transpose(1, 2) / self.d ** 0.5, dim=-1)
        x = x + self.out(att @ v)
        h, gate = self.ff_in(self.ln_ff(x)).chunk(2, dim=-1)
        return x + self.ff_out(h * nn.functional.gelu(gate))


class Encoder(nn.Module):
    """The Inr2Array encoder as notes/reference-bench.md composes it from the package's layers:
    GaussFF(128, scale 3) -> LearnedPosEmbedding(256) -> 6 x Block(256, 4 heads, ff x4) ->
    FlattenWeights -> cross-attention read-out to 16 x 256. The keywords give the other sizes of
    our `EncoderConfig` (`step_ref.py` builds the CPU-sized one: C 64, 2 blocks, 16 x 64)."""

    def __init__(self, spec, blocks=6, c=256, heads=4, ff=4, latents=16, d=256):
        super().__init__()
        self.trunk = Seq(L.GaussianFourierFeatureTransform(spec, 1, mapping_size=c // 2, scale=3),
                         L.LearnedPosEmbedding(spec, c),
                         *[Block(spec, c, heads, ff, 0.0) for _ in range(blocks)],
                         L.FlattenWeights(spec))
        self.readout = CrossAttnReadout(c, m=latents, d=d)

    def forward(self, x):
        return self.readout(self.trunk(x))


class Siren(nn.Module):
    """The SIREN 2-32-32-1 (omega0 = 30 on every sine layer), rendered functionally per INR."""

    def __init__(self):
        super().__init__()
        self.l0, self.l1, self.l2 = nn.Linear(2, 32), nn.Linear(32, 32), nn.Linear(32, 1)

    def forward(self, x):
        x = torch.sin(30 * self.l0(x))
        x = torch.sin(30 * self.l1(x))
        return self.l2(x)


def renderer(h=28, w=28):
    """Render a batch of SIRENs on the h x w grid the way the reference's editing loop does: its
    WeightSpaceFeatures become functional parameters, `torch.func.vmap` over `functional_call`."""
    siren = Siren()
    names = [n for n, _ in siren.named_parameters()]
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    coords = torch.stack([ys, xs], -1).reshape(-1, 2)

    def one(params):
        return torch.func.functional_call(siren, dict(zip(names, params)), (coords,))

    def render(wsfeat):
        params = []
        for weight, bias in zip(wsfeat.weights, wsfeat.biases):
            params += [weight.squeeze(1), bias.squeeze(1)]
        return torch.func.vmap(one)(tuple(params)).reshape(-1, 1, h, w)

    return render


class Editor(nn.Module):
    """The editing network plus the edit: theta + scale * net(theta). `kind` nfn_hnp is the
    reference's TransferNet (design.md §3.5): GaussFF(128, scale 3) -> HNPLinear 256->128 -> ReLU ->
    2 x (HNPLinear 128 -> ReLU) -> HNPLinear 128->1 -> LearnedScale(0.01). `nft` is our CPU-sized NFT
    editor built from the package's layers: GaussFF(16, scale 3) -> LearnedPosEmbedding(32) ->
    1 Block(32, 2 heads, ff x2) -> Pointwise 32->1 -> LearnedScale(0.01)."""

    def __init__(self, spec, kind):
        super().__init__()
        if kind == "nfn_hnp":
            mods = [L.GaussianFourierFeatureTransform(spec, 1, mapping_size=128, scale=3),
                    L.HNPLinear(spec, 256, 128), relu()]
            for _ in range(2):
                mods += [L.HNPLinear(spec, 128, 128), relu()]
            mods.append(L.HNPLinear(spec, 128, 1))
        else:
            mods = [L.GaussianFourierFeatureTransform(spec, 1, mapping_size=16, scale=3),
                    L.LearnedPosEmbedding(spec, 32), Block(spec, 32, 2, 2, 0.0), L.Pointwise(spec, 32, 1)]
        self.net = Seq(*mods, L.LearnedScale(spec, 0.01))

    def forward(self, x):
        return x + self.net(x)


def build(config, b):
    spec = network_spec_from_wsfeat(siren_batch(1), set_all_dims=True)
    if config in ("edit_nfn_hnp", "edit_nft"):
        m = Editor(spec, config[len("edit_"):])
        render = renderer()
        target = torch.rand(b, 1, 28, 28) * 2 - 1
        x = siren_batch(b)
        return (lambda x: render(m(x))), m, x, lambda out: nn.functional.mse_loss(out, target)
    if config in ("hnp512", "np512", "hnp128", "np128"):
        f, mods = classifier(spec, config[:-3] if config.startswith("hnp") else "np", int(config[-3:]))
        x = siren_batch(b)
        y = torch.randint(0, 10, (b,))
        return f, mods, x, lambda out: nn.functional.cross_entropy(out, y)
    if config == "inr2array_encoder":
        m = Encoder(spec)
        return m, m, siren_batch(b), lambda out: (out ** 2).mean()
    if config == "attention":
        m = L.NPAttention(spec, 256, 4, 0)
    elif config == "nft_block":
        m = Block(spec, 256, 4, 4, 0.0)
    else:
        raise SystemExit(f"unknown config {config}")
    x = siren_batch(b, 256)
    return m, m, x, lambda out: sum((w ** 2).mean() + (bb ** 2).mean() for w, bb in zip(out.weights, out.biases))


def median_ms(fn, iters):
    fn()
    sync()
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def count_flops(fn):
    """FLOPs of one call of `fn` as `FlopCounterMode` counts them (matmuls and convolutions)."""
    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    sync()
    return counter.get_total_flops()


def main():
    global DEVICE
    DEVICE, args = split_device(sys.argv[1:])
    if DEVICE != "cpu":
        torch.set_default_device(DEVICE)
    config, b, iters = args[0], int(args[1]), int(args[2])
    torch.manual_seed(0)
    f, mods, x, loss_fn = build(config, b)
    mods.eval()

    def fwd():
        with torch.no_grad():
            f(x)

    fwd_ms = median_ms(fwd, iters)
    mods.train()

    def fwdbwd():
        for p in mods.parameters():
            p.grad = None
        loss_fn(f(x)).backward()

    fwdbwd_ms = median_ms(fwdbwd, iters)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    params = sum(p.numel() for p in mods.parameters())
    # counted apart from the timed runs (and after the peak is read); the forward in eval mode as
    # timed, but with autograd on: the counter's module tracker fails on some no-grad outputs
    # (parameters passed through a view), and the grad mode changes no matmul
    fwdbwd_flop = count_flops(fwdbwd)
    mods.eval()
    fwd_flop = count_flops(lambda: f(x))
    print(json.dumps({"config": config, "batch": b, "fwd_ms": fwd_ms, "fwdbwd_ms": fwdbwd_ms,
                      "peak_mb": peak_mb, "params": params, "fwd_flop": fwd_flop,
                      "fwdbwd_flop": fwdbwd_flop}))


if __name__ == "__main__":
    main()
