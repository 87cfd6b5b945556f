"""Fitting, rendering and INR sets: the same numbers as the `nfn` command."""

import shutil
import threading
import time

import pytest
import torch

import nfn_rs
from conftest import need_fashion


def test_fit_equals_nfn_fit_inrs_bit_for_bit(fitted_set, train_inrs):
    _, manifest = fitted_set
    shard = next(s for s in manifest["shards"] if s["split"] == "train" and s["copy"] == 0)
    assert shard["start"] == 0 and shard["len"] == 16
    images, labels = nfn_rs.load_images("fashion-mnist", train_inrs.image_index.tolist())
    fit = nfn_rs.fit_inrs(images, seed=shard["seed"])
    for ours, theirs in zip(fit.inrs.weights + fit.inrs.biases, train_inrs.inrs.weights + train_inrs.inrs.biases):
        assert ours.shape == theirs.shape
        assert torch.equal(ours, theirs), "the module's fit differs from `nfn fit-inrs`"
    assert torch.equal(labels, train_inrs.labels)
    assert fit.psnr.shape == (16,) and bool((fit.psnr >= 30).all())


def test_render_reproduces_the_images(train_inrs):
    images, _ = nfn_rs.load_images("fashion-mnist", train_inrs.image_index.tolist())
    rendered = nfn_rs.render(train_inrs.inrs, 28, 28)
    assert rendered.shape == images.shape
    mse = ((rendered - images) ** 2).mean(dim=(1, 2, 3))
    psnr = 10 * torch.log10(4 / mse)
    assert bool((psnr > 30).all()), psnr


def test_open_inr_set_splits(fitted_set):
    path, manifest = fitted_set
    s = nfn_rs.open_inr_set(path)
    assert s.dataset == "fashion-mnist" and s.dims == [2, 32, 32, 1] and s.image_shape == [1, 28, 28]
    for name, count in zip(["train", "val", "test"], manifest["counts"]):
        assert s.splits[name].inrs.batch_size == count == s.splits[name].labels.shape[0]


def test_fit_releases_the_gil():
    need_fashion()
    images, _ = nfn_rs.load_images("fashion-mnist", range(64))
    ticks = []
    stop = threading.Event()

    def tick():
        while not stop.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.005)

    t = threading.Thread(target=tick)
    t.start()
    start = time.perf_counter()
    nfn_rs.fit_inrs(images, steps=60, target_psnr=-1)
    end = time.perf_counter()
    stop.set()
    t.join()
    during = [x for x in ticks if start < x < end]
    # Python kept running beside the fit (with the GIL held it could not tick at all).
    assert len(during) >= 3, f"{len(during)} ticks in {end - start:.2f} s of fitting"


def test_make_zoo_small(tmp_path, capfd):
    need_fashion()
    zoo = nfn_rs.make_zoo(
        "fashion-mnist", 2, tmp_path / "zoo", epochs=[0, 1], steps_per_epoch=2, eval_images=64
    )
    out, err = capfd.readouterr()
    assert "making a zoo" not in err and out == "", "progress was printed without being asked for"
    assert zoo.flat.shape == (4, 4970)  # 2 networks x 2 checkpoints
    assert zoo.cnns.batch_size == 4 and zoo.cnns.weights[0].shape[-2:] == (3, 3)
    assert zoo.test_accuracy.shape == (4,) and bool(((zoo.test_accuracy >= 0) & (zoo.test_accuracy <= 1)).all())
    # Asked for, the command's lines come (the zoo is there: it is read again, nothing retrained).
    nfn_rs.make_zoo(
        "fashion-mnist", 2, tmp_path / "zoo", epochs=[0, 1], steps_per_epoch=2, eval_images=64, progress=True
    )
    assert "making a zoo" in capfd.readouterr().err


# ---- bad input: named exceptions with the CLI's one-line message ---------------------------------


def test_wrong_image_shape_is_a_value_error():
    with pytest.raises(ValueError, match=r"images: expected \[n, channels, height, width\]"):
        nfn_rs.fit_inrs(torch.zeros(3, 28, 28))


def test_wrong_image_dtype_is_a_type_error():
    with pytest.raises(TypeError, match="floating-point"):
        nfn_rs.fit_inrs(torch.zeros(2, 1, 28, 28, dtype=torch.uint8))


def test_not_a_tensor_is_a_type_error():
    with pytest.raises(TypeError, match="torch.Tensor"):
        nfn_rs.fit_inrs([[1.0]])  # type: ignore[arg-type]


def test_missing_set_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="no_such_set"):
        nfn_rs.open_inr_set(tmp_path / "no_such_set")


def test_missing_images_is_file_not_found_or_named(tmp_path):
    with pytest.raises((FileNotFoundError, ValueError), match="mnist"):
        nfn_rs.load_images("mnist", data_dir=tmp_path)


def test_corrupt_shard_names_the_file(fitted_set, tmp_path):
    path, manifest = fitted_set
    copy = tmp_path / "broken"
    shutil.copytree(path, copy)
    shard = copy / manifest["shards"][0]["file"]
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=manifest["shards"][0]["file"]):
        nfn_rs.open_inr_set(copy)


def test_unknown_dataset_is_a_value_error():
    with pytest.raises(ValueError, match="unknown image data set"):
        nfn_rs.load_images("imagenet")
