"""Type stubs of the extension module (``crates/nfn-py/src``). Use the ``nfn_rs`` package: it wraps
these in tensors and :class:`nfn_rs.WeightSpace`. Capsules are DLPack capsules for
``torch.from_dlpack``; tensors passed in are read in place."""

from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch

Capsule = Any

__version__: str

def info() -> str: ...
def data_ptr(t: torch.Tensor) -> int: ...
def copy(t: torch.Tensor) -> Capsule: ...
def default_device() -> str: ...
def load_images(
    dataset: str, indices: Optional[List[int]] = None, data_dir: Optional[str] = None
) -> Tuple[Capsule, Capsule, int]: ...
def fit_inrs(
    images: torch.Tensor,
    recipe: str = "fast",
    seed: int = 0,
    steps: Optional[int] = None,
    lr: Optional[float] = None,
    target_psnr: Optional[float] = None,
    progress: bool = False,
) -> Tuple[List[Capsule], List[Capsule], Capsule, Capsule]: ...
def render(
    weights: List[torch.Tensor], biases: List[torch.Tensor], height: int, width: int
) -> Capsule: ...
def open_inr_set(path: str, splits: Sequence[str] = ..., copies: bool = False) -> Dict[str, Any]: ...
def read_inrs(path: str, splits: Sequence[str] = ..., channels: int = 1) -> Dict[str, Any]: ...
def make_zoo(
    dataset: str,
    networks: int,
    out: str,
    seed: int = 0,
    epochs: Sequence[int] = ...,
    steps_per_epoch: Optional[int] = None,
    eval_images: Optional[int] = None,
    data_dir: Optional[str] = None,
    progress: bool = False,
) -> Dict[str, Any]: ...

class Classifier:
    name: str
    dims: List[int]
    num_classes: Optional[int]
    test_accuracy: Optional[float]
    def logits(
        self, weights: List[torch.Tensor], biases: List[torch.Tensor], batch_size: int = 256
    ) -> Capsule: ...
    def embed(
        self, weights: List[torch.Tensor], biases: List[torch.Tensor], batch_size: int = 256
    ) -> Capsule: ...
    def check_range(self, weights: List[torch.Tensor], biases: List[torch.Tensor]) -> Optional[str]: ...

class Encoder:
    name: str
    dims: List[int]
    def embed(
        self, weights: List[torch.Tensor], biases: List[torch.Tensor], batch_size: int = 256
    ) -> Capsule: ...

class Editor:
    name: str
    dims: List[int]
    image_size: Tuple[int, int]
    def edit(
        self, weights: List[torch.Tensor], biases: List[torch.Tensor]
    ) -> Tuple[List[Capsule], List[Capsule]]: ...

class Graph:
    def backward(self, grads: List[Optional[torch.Tensor]]) -> List[Optional[Capsule]]: ...

class Module:
    kind: str
    equivariant: bool
    @staticmethod
    def model(
        config: str,
        weights: List[torch.Tensor],
        biases: List[torch.Tensor],
        num_outputs: int,
        seed: int = 0,
    ) -> "Module": ...
    @staticmethod
    def layer(
        kind: str, weights: List[torch.Tensor], biases: List[torch.Tensor], c_out: int, seed: int = 0
    ) -> "Module": ...
    def parameters(self) -> List[Tuple[str, Capsule]]: ...
    def forward(
        self, weights: List[torch.Tensor], biases: List[torch.Tensor], train: bool = False
    ) -> List[Capsule]: ...
    def forward_graph(
        self, weights: List[torch.Tensor], biases: List[torch.Tensor], train: bool = True
    ) -> Tuple[List[Capsule], Graph]: ...
    def save(self, path: str) -> None: ...
    def load(self, path: str) -> None: ...

def load_pretrained(dataset: str, model: Optional[str] = None) -> Classifier: ...
def load_run(path: str) -> Any: ...
