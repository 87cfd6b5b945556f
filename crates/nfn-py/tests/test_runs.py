"""Runs trained by `nfn train`, and INRs in the formats `nfn predict` reads, from Python."""

import csv
from pathlib import Path

import pytest
import torch

import nfn_rs
from conftest import ROOT, nfn

REFERENCE = ROOT / "crates/nfn-datasets/tests/fixtures/pth/siren_mnist_wts"


def test_classification_run_predicts_as_nfn_predict(fitted_set, trained_runs, tmp_path):
    path, _ = fitted_set
    _, run = trained_runs["py_hnp"]
    clf = nfn_rs.load_run(run)
    assert isinstance(clf, nfn_rs.Classifier)
    out = tmp_path / "p.csv"
    nfn("predict", "--run", str(run), "--inrs", str(path), "--splits", "test", "--out", str(out))
    rows = list(csv.DictReader(out.open()))
    theirs = torch.tensor([[float(r[f"p{c}"]) for c in range(10)] for r in rows])
    test = nfn_rs.open_inr_set(path, ["test"]).splits["test"]
    ours = clf.predict(test.inrs)
    assert torch.allclose(ours, theirs, atol=6e-6, rtol=0), (ours - theirs).abs().max()


def test_pretraining_run_embeds_as_nfn_embed(fitted_set, trained_runs, tmp_path):
    import numpy as np

    path, _ = fitted_set
    _, run = trained_runs["py_ae"]
    encoder = nfn_rs.load_run(run)
    assert isinstance(encoder, nfn_rs.Encoder)
    out = tmp_path / "z.npy"
    nfn("embed", "--run", str(run), "--inrs", str(path), "--splits", "test", "--out", str(out))
    theirs = torch.from_numpy(np.load(out))
    ours = encoder.embed(nfn_rs.open_inr_set(path, ["test"]).splits["test"].inrs, batch_size=2)
    assert ours.shape == theirs.shape == (theirs.shape[0], 4, 8)
    assert torch.allclose(ours, theirs, atol=1e-6), (ours - theirs).abs().max()


def test_editing_run_edits_as_nfn_edit(fitted_set, trained_runs, tmp_path):
    path, _ = fitted_set
    _, run = trained_runs["py_edit"]
    editor = nfn_rs.load_run(run)
    assert isinstance(editor, nfn_rs.Editor) and editor.image_size == (28, 28)
    out = tmp_path / "edited"
    nfn("edit", "--run", str(run), "--inrs", str(path), "--out", str(out))
    theirs = nfn_rs.open_inr_set(out, ["test"]).splits["test"].inrs
    test = nfn_rs.open_inr_set(path, ["test"]).splits["test"]
    ours = editor.edit(test.inrs)
    for a, b in zip(ours.weights + ours.biases, theirs.weights + theirs.biases):
        assert torch.allclose(a, b, atol=1e-6), (a - b).abs().max()
    # An edit changes the networks (theta + delta theta).
    assert not torch.equal(ours.weights[0], test.inrs.weights[0])


def test_read_inrs_from_an_npz_and_a_set(fitted_set, trained_runs, tmp_path):
    path, _ = fitted_set
    cfg, _ = trained_runs["py_hnp"]
    nfn("export-inrs", "--config", str(cfg), "--out", str(tmp_path))
    from_npz = nfn_rs.read_inrs(tmp_path / "test.npz")
    from_set = nfn_rs.read_inrs(path, ["test"])
    for a, b in zip(from_npz.inrs.weights + from_npz.inrs.biases, from_set.inrs.weights + from_set.inrs.biases):
        assert torch.equal(a, b)
    assert from_set.split == ["test"] * from_set.inrs.batch_size
    assert bool((from_npz.labels == -1).all())  # a .npz records no labels


def test_read_inrs_from_a_reference_pth_folder():
    if not REFERENCE.exists():
        pytest.skip(f"{REFERENCE} is missing")
    rows = nfn_rs.read_inrs(REFERENCE)
    assert rows.inrs.weights[0].shape[1:] == (1, 32, 2)
    # The same numbers as PyTorch reads from the .pth files.
    # The base fits (the `_aug<k>_` folders are augmentation copies, read by `convert-inrs --copies`).
    files = sorted(f for f in REFERENCE.glob("randinit_smaller_*/net*.pth") if "_aug" not in f.parent.name)
    assert len(files) == rows.inrs.batch_size
    some = torch.load(files[0], map_location="cpu", weights_only=True)
    tensors = [t for t in some.values() if isinstance(t, torch.Tensor)]
    flat_theirs = torch.cat([t.reshape(-1) for t in tensors])
    matches = []
    for i in range(rows.inrs.batch_size):
        flat_ours = torch.cat([x[i].reshape(-1) for pair in zip(rows.inrs.weights, rows.inrs.biases) for x in pair])
        matches.append(flat_ours.shape == flat_theirs.shape and torch.equal(flat_ours, flat_theirs))
    assert any(matches), "no INR read equals the .pth file's tensors"


def test_bad_npz_is_a_value_error(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ValueError, match="bad.npz"):
        nfn_rs.read_inrs(bad)
