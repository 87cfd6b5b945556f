"""nfn-rs from PyTorch: weight-space learning (NFT, NFN, Inr2Array, ProbeGen) in the same process.

Tensors cross without copies (DLPack): arguments are read where they lie, results are tensors that
LibTorch allocated and PyTorch now owns. Networks are given as a :class:`WeightSpace` (or anything
with ``.weights`` and ``.biases``, such as the reference ``nfn`` package's ``WeightSpaceFeatures``):
``weights[l]`` is ``[B, C, n_l, n_{l-1}]`` (CNN filters add their kernel dims), ``biases[l]`` is
``[B, C, n_l]``. Errors are Python exceptions (``ValueError``, ``FileNotFoundError``, ``TypeError``)
with the one-line message the ``nfn`` command prints. See ``docs/python.md``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple, Union

# First: the extension links the LibTorch inside this torch wheel, which importing torch loads.
import torch

from . import _native

__version__: str = _native.__version__

__all__ = [
    "WeightSpace",
    "FitResult",
    "InrSplit",
    "InrSet",
    "Classifier",
    "Editor",
    "Encoder",
    "Module",
    "info",
    "load_images",
    "fit_inrs",
    "render",
    "open_inr_set",
    "read_inrs",
    "InrRows",
    "Zoo",
    "make_zoo",
    "load_pretrained",
    "load_run",
    "permute_hidden",
]

PathLike = Union[str, Path]


class WeightSpace(NamedTuple):
    """The weights and biases of a batch of networks (the reference's ``WeightSpaceFeatures``)."""

    weights: Tuple[torch.Tensor, ...]
    biases: Tuple[torch.Tensor, ...]

    @property
    def batch_size(self) -> int:
        return int(self.weights[0].shape[0])

    def select(self, index: Any) -> "WeightSpace":
        """The networks at ``index`` (a slice, list or index tensor): ``ws.select(slice(0, 10))``."""
        return WeightSpace(
            tuple(w[index] for w in self.weights), tuple(b[index] for b in self.biases)
        )

    def to(self, *args: Any, **kwargs: Any) -> "WeightSpace":
        return WeightSpace(
            tuple(w.to(*args, **kwargs) for w in self.weights),
            tuple(b.to(*args, **kwargs) for b in self.biases),
        )


def _lists(ws: Any) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
    """``(weights, biases)`` lists, detached, from a WeightSpace-like object or a dict of ``W<l>``,
    ``b<l>`` (``nfn export-inrs``'s ``.npz`` keys)."""
    weights, biases = _graph_lists(ws)
    return [w.detach() for w in weights], [b.detach() for b in biases]


def _graph_lists(ws: Any) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
    """As :func:`_lists`, the tensors themselves (their autograd graph kept)."""
    if isinstance(ws, dict):
        n = sum(1 for k in ws if k.startswith("W"))
        weights = [torch.as_tensor(ws[f"W{l}"]) for l in range(n)]
        biases = [torch.as_tensor(ws[f"b{l}"]) for l in range(n)]
    elif hasattr(ws, "weights") and hasattr(ws, "biases"):
        weights, biases = list(ws.weights), list(ws.biases)
    else:
        raise TypeError(
            f"expected a WeightSpace (weights, biases) or a dict of W<l>, b<l>; got {type(ws).__name__}"
        )
    for name, ts in (("weights", weights), ("biases", biases)):
        for l, t in enumerate(ts):
            if not isinstance(t, torch.Tensor):
                raise TypeError(f"{name}[{l}]: expected a torch.Tensor, got {type(t).__name__}")
    return weights, biases


def _tensor(x: Any, name: str) -> torch.Tensor:
    """``x`` detached, or ``TypeError`` naming ``name`` if it is not a tensor."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    return x.detach()


def _t(capsule: Any) -> torch.Tensor:
    return torch.utils.dlpack.from_dlpack(capsule)


def _ws(pair: Tuple[Sequence[Any], Sequence[Any]]) -> WeightSpace:
    w, b = pair
    return WeightSpace(tuple(_t(x) for x in w), tuple(_t(x) for x in b))


def info() -> str:
    """nfn-rs's version, the LibTorch it runs on (torch's own: the process has one), its thread
    count and whether CUDA is available."""
    version, rest = _native.info().split(", ", 1)
    return f"{version} on LibTorch {torch.__version__}, {rest}"


def load_images(
    dataset: str, indices: Optional[Iterable[int]] = None, data_dir: Optional[PathLike] = None
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Images ``[n, c, h, w]`` (float32 in ``[-1, 1]``, exactly as ``nfn fit-inrs`` fits them) and
    labels ``[n]`` of ``fashion-mnist``, ``mnist``, ``cifar10`` or ``cifar10-subset``: all of them
    (training images first) or those at ``indices``."""
    idx = None if indices is None else [int(i) for i in indices]
    images, labels, _ = _native.load_images(
        dataset, idx, None if data_dir is None else str(data_dir)
    )
    return _t(images), _t(labels)


class FitResult(NamedTuple):
    """Fitted SIRENs, the final PSNR of each (dB on the ``[-1, 1]`` range) and its Adam steps."""

    inrs: WeightSpace
    psnr: torch.Tensor
    steps: torch.Tensor


def fit_inrs(
    images: torch.Tensor,
    recipe: str = "fast",
    seed: int = 0,
    steps: Optional[int] = None,
    lr: Optional[float] = None,
    target_psnr: Optional[float] = None,
    progress: bool = False,
) -> FitResult:
    """Fit one SIREN (2 -> 32 -> 32 -> c) per image with nfn-rs's batched fitter.

    ``images`` is ``[n, c, h, w]`` in ``[-1, 1]``. ``recipe="fast"`` is our measured default (lr
    5e-3 with cosine decay, each SIREN stops at 40 dB, at most 500 steps); ``"reference"`` fits as
    the reference's SIRENs are said to be (Adam 1e-3, 250 steps). The same images and seed give
    bit for bit the INRs ``nfn fit-inrs`` writes for them (its shards record their seeds). The
    GIL is released while fitting; ``progress=True`` prints a line every 50 steps."""
    w, b, psnr, st = _native.fit_inrs(
        _tensor(images, "images"), recipe, seed, steps, lr, target_psnr, progress
    )
    return FitResult(_ws((w, b)), _t(psnr), _t(st))


def render(inrs: Any, height: int, width: int) -> torch.Tensor:
    """Images ``[n, c, h, w]`` of SIRENs on the fitter's pixel grid."""
    w, b = _lists(inrs)
    return _t(_native.render(w, b, height, width))


class InrSplit(NamedTuple):
    """One split of an INR set: the SIRENs, their labels and the indices of their images."""

    inrs: WeightSpace
    labels: torch.Tensor
    image_index: torch.Tensor


class InrSet(NamedTuple):
    """An INR set (``nfn fit-inrs`` / ``nfn convert-inrs``): splits by name."""

    dataset: str
    dims: List[int]
    image_shape: List[int]
    splits: Dict[str, InrSplit]


def open_inr_set(
    path: PathLike, splits: Sequence[str] = ("train", "val", "test"), copies: bool = False
) -> InrSet:
    """Read an INR set folder: the base fits of ``splits`` (and the training split's augmentation
    copies if ``copies``). A reference ``.pth`` folder converts with ``nfn convert-inrs`` first."""
    d = _native.open_inr_set(str(path), list(splits), copies)
    out = {
        name: InrSplit(_ws((s["weights"], s["biases"])), _t(s["labels"]), _t(s["image_index"]))
        for name, s in d["splits"].items()
    }
    return InrSet(d["dataset"], list(d["dims"]), list(d["image_shape"]), out)


class InrRows(NamedTuple):
    """INRs read from a folder or file, with what the input records about each (``-1`` / ``""``
    where it records nothing)."""

    inrs: WeightSpace
    labels: torch.Tensor
    image_index: torch.Tensor
    split: List[str]


def read_inrs(path: PathLike, splits: Sequence[str] = ("test",), channels: int = 1) -> InrRows:
    """INRs as ``nfn predict --inrs`` reads them: an INR set folder (the base fits of ``splits``),
    a reference SIREN folder (``randinit_smaller_<d>s/net<i>.pth``, the reference's published
    sets) or a ``.npz`` of ``W<l>``/``b<l>`` arrays (``nfn export-inrs``); SIRENs 2 -> 32 -> 32 ->
    ``channels``."""
    d = _native.read_inrs(str(path), list(splits), channels)
    return InrRows(_ws((d["weights"], d["biases"])), _t(d["labels"]), _t(d["image_index"]), list(d["split"]))


class Zoo(NamedTuple):
    """A CNN zoo: the networks (our layout), their flat TensorFlow rows ``[n, 4970]``, and per row
    the training step of the checkpoint and its test accuracy."""

    cnns: WeightSpace
    flat: torch.Tensor
    step: torch.Tensor
    test_accuracy: torch.Tensor


def make_zoo(
    dataset: str,
    networks: int,
    out: PathLike,
    seed: int = 0,
    epochs: Sequence[int] = (0, 1, 2, 4),
    steps_per_epoch: Optional[int] = None,
    eval_images: Optional[int] = None,
    data_dir: Optional[PathLike] = None,
    progress: bool = False,
) -> Zoo:
    """Train ``networks`` Small CNN Zoo networks (``nfn make-zoo``; resumable, written in the Small
    CNN Zoo format to ``out``) and read them back; ``progress=True`` prints ``nfn make-zoo``'s
    lines. The GIL is released while training."""
    d = _native.make_zoo(
        dataset,
        networks,
        str(out),
        seed,
        list(epochs),
        steps_per_epoch,
        eval_images,
        None if data_dir is None else str(data_dir),
        progress,
    )
    return Zoo(_ws((d["weights"], d["biases"])), _t(d["flat"]), _t(d["step"]), _t(d["test_accuracy"]))


class Classifier:
    """A trained INR classifier: shipped (:func:`load_pretrained`) or a run (:func:`load_run`)."""

    def __init__(self, native: Any):
        self._native = native
        #: The model's name (``probegen``, ``nft``, ``inr2array``, ... or the run's folder).
        self.name: str = native.name
        #: Layer widths of the SIRENs it reads.
        self.dims: List[int] = list(native.dims)
        #: The test accuracy its card records (shipped models).
        self.test_accuracy: Optional[float] = native.test_accuracy

    def logits(self, inrs: Any, batch_size: int = 256) -> torch.Tensor:
        """Class logits ``[n, classes]``."""
        w, b = _lists(inrs)
        return _t(self._native.logits(w, b, batch_size))

    def predict(self, inrs: Any, batch_size: int = 256) -> torch.Tensor:
        """Class probabilities ``[n, classes]`` (what ``nfn predict`` writes)."""
        return self.logits(inrs, batch_size).softmax(-1)

    def embed(self, inrs: Any, batch_size: int = 256) -> torch.Tensor:
        """Inr2Array latent arrays ``[n, M, D]`` (models with an Inr2Array encoder)."""
        w, b = _lists(inrs)
        return _t(self._native.embed(w, b, batch_size))

    def check_range(self, inrs: Any) -> Optional[str]:
        """A warning if these INRs' weight statistics lie outside the training INRs' range."""
        w, b = _lists(inrs)
        return self._native.check_range(w, b)

    def __repr__(self) -> str:
        return f"Classifier({self.name!r}, dims={self.dims})"


class Encoder:
    """The Inr2Array encoder of a pretraining run (an ``inr2array_pretrain`` run)."""

    def __init__(self, native: Any):
        self._native = native
        self.name: str = native.name
        self.dims: List[int] = list(native.dims)

    def embed(self, inrs: Any, batch_size: int = 256) -> torch.Tensor:
        """Latent arrays ``[n, M, D]`` (what ``nfn embed --run`` writes)."""
        w, b = _lists(inrs)
        return _t(self._native.embed(w, b, batch_size))

    def __repr__(self) -> str:
        return f"Encoder({self.name!r}, dims={self.dims})"


class Editor:
    """A trained INR editor (an ``inr_editing`` run)."""

    def __init__(self, native: Any):
        self._native = native
        self.name: str = native.name
        self.dims: List[int] = list(native.dims)
        self.image_size: Tuple[int, int] = tuple(native.image_size)  # type: ignore[assignment]

    def edit(self, inrs: Any) -> WeightSpace:
        """The edited SIRENs (theta + delta theta)."""
        w, b = _lists(inrs)
        return _ws(self._native.edit(w, b))

    def __repr__(self) -> str:
        return f"Editor({self.name!r}, dims={self.dims})"


def load_pretrained(dataset: str, model: Optional[str] = None) -> Classifier:
    """A model shipped with nfn-rs (``fashion-mnist``, ``mnist``; ``model`` defaults to the card's
    best, see ``crates/nfn-cli/pretrained/<dataset>/MODEL.md``)."""
    return Classifier(_native.load_pretrained(dataset, model))


def load_run(path: PathLike) -> Union[Classifier, Encoder, Editor]:
    """A trained run folder (``data/runs/<exp>``): its best checkpoint, as a classifier
    (classification runs), an encoder (Inr2Array pretraining) or an editor, by the run's task."""
    native = _native.load_run(str(path))
    if isinstance(native, _native.Editor):
        return Editor(native)
    if isinstance(native, _native.Encoder):
        return Encoder(native)
    return Classifier(native)


class _NativeFunction(torch.autograd.Function):
    """nfn-rs's forward with LibTorch's autograd underneath: PyTorch's graph gets one node whose
    backward runs nfn-rs's graph (the same LibTorch engine) for the inputs and the parameters."""

    @staticmethod
    def forward(ctx, native, train, n_inputs, *tensors):  # type: ignore[override]
        inputs = [t.detach() for t in tensors[:n_inputs]]
        half = n_inputs // 2
        outs, graph = native.forward_graph(inputs[:half], inputs[half:], train)
        ctx.graph = graph
        ctx.inputs = inputs  # nfn-rs's graph reads their memory: keep them alive with it
        outs = tuple(_t(o) for o in outs)
        return outs if len(outs) > 1 else outs[0]

    @staticmethod
    def backward(ctx, *grads):  # type: ignore[override]
        gs = ctx.graph.backward([None if g is None else g.contiguous() for g in grads])
        gs = [None if g is None else _t(g) for g in gs]
        return (None, None, None, *gs)


class Module(torch.nn.Module):
    """An nfn-rs model or equivariant layer as a ``torch.nn.Module``.

    Its parameters live in LibTorch and are shared with PyTorch (same memory), so PyTorch's
    optimizers, ``state_dict`` and ``DistributedDataParallel`` (CPU, gloo) train it, and gradients
    flow into the caller's graph: through the input weights as well as to the parameters. Build one
    with :meth:`Module.model` (any model kind of the experiment configs) or :meth:`Module.layer`.
    CPU only."""

    def __init__(self, native: Any):
        super().__init__()
        self._native = native
        self.kind: str = native.kind
        self.equivariant: bool = native.equivariant
        self._names: List[str] = []
        for name, capsule in native.parameters():
            key = name.replace(".", "__")
            self._names.append(key)
            self.register_parameter(key, torch.nn.Parameter(_t(capsule)))

    @staticmethod
    def model(
        config: Union[str, Dict[str, Any]], like: Any, num_outputs: int, seed: int = 0
    ) -> "Module":
        """An invariant model from its config (the ``[model]`` table of an experiment config, as a
        dict or TOML text; e.g. ``{"kind": "nfn", "layer": "hnp", ...}``), for networks shaped like
        ``like``, with ``num_outputs`` outputs."""
        text = json.dumps(config) if isinstance(config, dict) else config
        w, b = _lists(like)
        return Module(_native.Module.model(text, w, b, num_outputs, seed))

    @staticmethod
    def layer(kind: str, like: Any, c_out: int, seed: int = 0) -> "Module":
        """One equivariant layer (``"hnp"`` or ``"np"``) from ``like``'s channels to ``c_out``."""
        w, b = _lists(like)
        return Module(_native.Module.layer(kind, w, b, c_out, seed))

    def forward(self, inrs: Any) -> Union[torch.Tensor, WeightSpace]:
        w, b = _graph_lists(inrs)
        params = [getattr(self, k) for k in self._names]
        needs_graph = torch.is_grad_enabled() and (
            any(p.requires_grad for p in params) or any(t.requires_grad for t in w + b)
        )
        if not needs_graph:
            outs = [_t(o) for o in self._native.forward([t.detach() for t in w], [t.detach() for t in b], self.training)]
        else:
            out = _NativeFunction.apply(self._native, self.training, len(w) + len(b), *w, *b, *params)
            outs = list(out) if isinstance(out, tuple) else [out]
        if not self.equivariant:
            return outs[0]
        half = len(outs) // 2
        return WeightSpace(tuple(outs[:half]), tuple(outs[half:]))

    def save(self, path: PathLike) -> None:
        """Save the parameters as safetensors (``nfn``'s checkpoint format)."""
        self._native.save(str(path))

    def load(self, path: PathLike) -> None:
        """Load parameters saved by :meth:`save` (or a run's ``model.safetensors``)."""
        self._native.load(str(path))


def permute_hidden(inrs: Any, layer: int, perm: torch.Tensor) -> WeightSpace:
    """The same networks with the hidden neurons of layer ``layer``'s output reordered by ``perm``
    (rows of ``W_layer`` and ``b_layer``, columns of ``W_{layer+1}``): a symmetry of every MLP,
    so invariant models must give the same output."""
    w, b = _lists(inrs)
    if not 0 <= layer < len(w) - 1:
        raise ValueError(f"layer {layer}: the hidden layers are 0..{len(w) - 2}")
    w, b = list(w), list(b)
    w[layer] = w[layer][:, :, perm]
    b[layer] = b[layer][:, :, perm]
    w[layer + 1] = w[layer + 1][:, :, :, perm]
    return WeightSpace(tuple(w), tuple(b))
