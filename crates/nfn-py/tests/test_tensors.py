"""Tensors cross between PyTorch and nfn-rs without copies, both ways."""

import gc

import torch

import nfn_rs
from nfn_rs import _native


def test_import_and_info():
    line = nfn_rs.info()
    assert line.startswith("nfn-rs ") and "intra-op threads" in line
    assert f"LibTorch {torch.__version__}," in line


def test_arguments_are_read_in_place():
    t = torch.randn(5, 7)
    assert _native.data_ptr(t) == t.data_ptr()
    # A strided view is passed as is too (its own offset and strides), not made contiguous.
    v = t.T[1:]
    assert _native.data_ptr(v) == v.data_ptr()


def test_results_are_handed_over_and_owned_by_pytorch():
    t = torch.arange(12, dtype=torch.float64).reshape(3, 4)
    c = torch.from_dlpack(_native.copy(t))
    assert c.dtype == torch.float64 and torch.equal(c, t)
    assert c.data_ptr() != t.data_ptr()
    ptr = c.data_ptr()
    del t
    gc.collect()
    c += 1  # the memory is PyTorch's now: writable, and alive as long as `c`
    assert c.data_ptr() == ptr and c[2, 3].item() == 12.0


def test_strided_results_keep_their_strides():
    t = torch.randn(4, 6).T  # non-contiguous
    c = torch.from_dlpack(_native.copy(t))
    assert torch.equal(c, t)


def test_module_parameters_share_memory():
    ws = nfn_rs.WeightSpace(*[tuple(x) for x in (
        [torch.randn(2, 1, 4, 2), torch.randn(2, 1, 3, 4)],
        [torch.randn(2, 1, 4), torch.randn(2, 1, 3)],
    )])
    m = nfn_rs.Module.layer("hnp", ws, c_out=2)
    before = m(ws)
    with torch.no_grad():
        for p in m.parameters():
            p.zero_()
    after = m(ws)  # the zeroed parameters are the ones nfn-rs computes with
    assert not torch.equal(before.weights[0], after.weights[0])
    assert all(torch.count_nonzero(w) == 0 for w in after.weights)
    # And nfn-rs hands out the same memory again.
    first = dict(m.named_parameters())
    for name, capsule in m._native.parameters():
        assert torch.from_dlpack(capsule).data_ptr() == first[name.replace(".", "__")].data_ptr()
