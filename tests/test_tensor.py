"""The Tensor and its autograd: PyTorch semantics, long graphs, clear errors."""
import re

import numpy as np
import pytest

import tinygrad_lm as tg
import tinygrad_lm.nn.functional as F
from tinygrad_lm import backend
from tinygrad_lm.viz.graph import Graph


def test_default_dtypes_follow_pytorch():
    assert tg.Tensor([1.0, 2.0]).dtype == np.float32
    assert tg.Tensor(1.5).dtype == np.float32
    assert tg.Tensor([1, 2]).dtype == np.int64
    assert tg.Tensor(np.zeros(3)).dtype == np.float64      # arrays keep their dtype
    assert tg.Tensor(np.zeros(3), dtype=np.float32).dtype == np.float32


def test_float32_stays_float32_through_python_scalars():
    x = tg.Tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    y = ((x * 2.5 + 1) / 3 - 0.5) ** 2
    y = F.gelu(y, "tanh").softmax(-1).log()
    assert y.dtype == np.float32
    y.backward(np.ones(3, dtype=np.float32))
    assert x.grad.dtype == np.float32 and x.grad.shape == (3,)


def test_grad_accumulates_until_zeroed():
    x = tg.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    (x * x).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * 2 * x.data)
    x.grad = None
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad, [3.0, 3.0])


def test_shared_subexpression_gets_both_paths():
    x = tg.Tensor(np.array([3.0]), requires_grad=True)
    y = x * x          # used twice below
    z = y + y * 2
    z.backward(np.ones(1))
    np.testing.assert_allclose(x.grad, 3 * 2 * x.data)


def test_backward_handles_a_chain_of_10000_ops():
    x = tg.Tensor(np.array([1.0]), requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.backward(np.ones(1))
    np.testing.assert_allclose(x.grad, [1.0001 ** 10_000], rtol=1e-9)


def test_no_grad_builds_no_graph_and_detach_cuts():
    x = tg.Tensor(np.ones(3), requires_grad=True)
    with tg.no_grad():
        y = x * 2
    assert not y.requires_grad and y._ctx is None
    assert tg.is_grad_enabled()
    z = (x * 2).detach()
    assert not z.requires_grad and z.is_leaf
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.sum().backward()


def test_intermediate_grads_only_when_retained():
    x = tg.Tensor(np.ones(2), requires_grad=True)
    h = x * 3
    h2 = (x * 3).retain_grad()
    (h * h2).sum().backward()
    assert h.grad is None
    np.testing.assert_allclose(h2.grad, [3.0, 3.0])


def test_item_numpy_shape_properties():
    x = tg.Tensor(np.arange(6.0).reshape(2, 3))
    assert x.shape == (2, 3) and x.ndim == 2 and x.numel() == 6 and x.device == "cpu"
    assert x.sum().item() == 15.0
    assert isinstance(x.numpy(), np.ndarray)
    with pytest.raises(ValueError, match="one element"):
        x.item()


def test_backward_on_non_scalar_needs_gradient():
    x = tg.Tensor(np.ones((2, 2)), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"needs a scalar.*\(2, 2\)"):
        (x * 2).backward()
    with pytest.raises(tg.GradientShapeError, match="shape"):
        (x * 2).backward(np.ones(3))


@pytest.mark.parametrize("build, pattern", [
    (lambda: tg.Tensor(np.ones((2, 3))) + tg.Tensor(np.ones((4, 3))), r"Add \(\+\): shapes \(2, 3\) and \(4, 3\)"),
    (lambda: tg.Tensor(np.ones((2, 3))) @ tg.Tensor(np.ones((2, 3))), r"MatMul: shapes \(2, 3\) and \(2, 3\)"),
    (lambda: tg.Tensor(np.ones((2, 3))).reshape(4, 2), r"Reshape: .*\(2, 3\).*\(4, 2\)"),
    (lambda: tg.Tensor(np.ones((2, 3))).masked_fill(np.ones((3, 3), bool), 0), r"MaskedFill"),
    (lambda: F.embedding(np.array([0, 5]), tg.Tensor(np.ones((4, 2)))), r"index 5 is out of range for size 4"),
    (lambda: F.embedding(np.array([-1]), tg.Tensor(np.ones((4, 2)))), r"index -1 is out of range"),
    (lambda: F.cross_entropy(tg.Tensor(np.ones((2, 3))), np.array([0, 3])), r"index 3 is out of range for size 3"),
    (lambda: F.cross_entropy(tg.Tensor(np.ones((2, 3))), np.array([0, 1, 2])), r"targets of shape \(2,\)"),
])
def test_bad_input_gets_a_clear_error(build, pattern):
    with pytest.raises((ValueError, IndexError)) as info:
        build()
    assert re.search(pattern, str(info.value)), str(info.value)


def test_mixed_devices_raise_naming_both():
    from . import strict_backend
    strict_backend.register()
    a = tg.Tensor(np.ones(3))
    b = tg.Tensor(np.ones(3), device="strict")
    with pytest.raises(tg.DeviceError, match=r"'cpu'.*'strict'"):
        a + b


def test_cuda_without_cupy_or_gpu_says_how_to_install():
    if backend.is_available("cuda"):
        pytest.skip("a GPU is available here, so 'cuda' works")
    with pytest.raises(tg.DeviceError, match="cupy|CuPy"):
        tg.Tensor([1.0], device="cuda")


def test_to_moves_and_casts(device):
    x = tg.Tensor(np.arange(3.0), requires_grad=True)
    y = x.to(device)
    assert y.device == device and y.requires_grad
    np.testing.assert_array_equal(y.numpy(), [0, 1, 2])
    assert y.to("cpu").device == "cpu"
    assert x.to(dtype=np.float32).dtype == np.float32


def test_graph_viewer_text_and_figure(tmp_path):
    x = tg.Tensor(np.ones((2, 3)), requires_grad=True)
    w = tg.Tensor(np.full((3, 4), 0.5), requires_grad=True)
    loss = (x @ w).relu().sum()
    g = Graph(loss)
    loss.backward()
    text = g.text()
    assert "MatMul (2, 4)" in text and "ReLU (2, 4)" in text and "Sum ()" in text
    # the gradient into (x @ w) is all ones (relu is active everywhere): norm sqrt(8)
    assert f"|grad| = {np.sqrt(8):.4g}" in text
    g.draw(tmp_path / "graph.png")
    assert (tmp_path / "graph.png").stat().st_size > 1000


def test_core_import_needs_numpy_alone():
    import subprocess
    import sys
    code = ("import sys, tinygrad_lm, tinygrad_lm.nn, tinygrad_lm.models.gpt, tinygrad_lm.optim, tinygrad_lm.gradcheck; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'regex', 'matplotlib', 'torch', 'cupy', 'mpi4py', 'scipy'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
