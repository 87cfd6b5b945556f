"""Shipped and trained models from Python: the same predictions as `nfn predict`, invariance to
neuron permutations, and named errors."""

import csv

import pytest
import torch

import nfn_rs
from conftest import nfn


@pytest.mark.parametrize("model", ["inr2array", "nft"])
def test_predict_equals_nfn_predict(fitted_set, train_inrs, tmp_path, model):
    path, _ = fitted_set
    out = tmp_path / "p.csv"
    nfn("predict", "--pretrained", "fashion-mnist", "--model", model, "--inrs", str(path), "--splits", "train", "--out", str(out))
    rows = list(csv.DictReader(out.open()))
    theirs = torch.tensor([[float(r[f"p{c}"]) for c in range(10)] for r in rows])
    clf = nfn_rs.load_pretrained("fashion-mnist", model)
    ours = clf.predict(train_inrs.inrs)
    assert ours.shape == (16, 10)
    # The CSV has 5 decimals.
    assert torch.allclose(ours, theirs, atol=6e-6, rtol=0), (ours - theirs).abs().max()
    assert [int(r["predicted"]) for r in rows] == ours.argmax(-1).tolist()


@pytest.mark.parametrize("model", ["inr2array", "nft"])
def test_predict_is_invariant_to_hidden_neuron_permutations(train_inrs, model):
    clf = nfn_rs.load_pretrained("fashion-mnist", model)
    inrs = train_inrs.inrs
    g = torch.Generator().manual_seed(1)
    permuted = nfn_rs.permute_hidden(inrs, 0, torch.randperm(32, generator=g))
    permuted = nfn_rs.permute_hidden(permuted, 1, torch.randperm(32, generator=g))
    assert not torch.equal(permuted.weights[1], inrs.weights[1])
    # float32 sums taken in another order: the same probabilities to ~1e-6.
    assert torch.allclose(clf.predict(permuted), clf.predict(inrs), atol=1e-5)


def test_embed_gives_latent_arrays(train_inrs):
    clf = nfn_rs.load_pretrained("fashion-mnist", "inr2array")
    z = clf.embed(train_inrs.inrs, batch_size=5)
    assert z.dim() == 3 and z.shape[0] == 16
    with pytest.raises(ValueError, match="no Inr2Array encoder"):
        nfn_rs.load_pretrained("fashion-mnist", "nft").embed(train_inrs.inrs)


def test_nan_weights_are_refused(train_inrs):
    clf = nfn_rs.load_pretrained("fashion-mnist", "nft")
    w = list(train_inrs.inrs.weights)
    w[1] = w[1].clone()
    w[1][3, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN|non-finite|finite"):
        clf.predict(nfn_rs.WeightSpace(tuple(w), train_inrs.inrs.biases))


def test_wrong_architecture_is_refused():
    from conftest import random_mlp

    clf = nfn_rs.load_pretrained("fashion-mnist", "nft")
    with pytest.raises(ValueError, match=r"widths \[2, 8, 8, 3\].*reads networks of widths \[2, 32, 32, 1\]"):
        clf.predict(random_mlp())


def test_unknown_pretrained_is_a_value_error():
    with pytest.raises(ValueError, match="no pretrained models for \"imagenet\""):
        nfn_rs.load_pretrained("imagenet")
    with pytest.raises(ValueError, match="no pretrained model \"resnet\""):
        nfn_rs.load_pretrained("fashion-mnist", "resnet")


def test_missing_run_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        nfn_rs.load_run(tmp_path / "no_run")
