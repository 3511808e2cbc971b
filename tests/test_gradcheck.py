"""The gradient checker itself: it must catch real backward bugs and never touch the caller's data."""
import numpy as np
import pytest

import tinygrad_lm as tg
from tinygrad_lm.gradcheck import GradcheckError, gradcheck
from tinygrad_lm.ops import Add, MatMul, Softmax, unbroadcast


class SoftmaxZeroBackward(Softmax):
    def backward(self, grad):
        return grad * 0


class MatMulMissingTranspose(MatMul):
    def backward(self, grad):
        return grad @ self.y, self.x @ grad            # should be y^T and x^T


class AddNotSummedBack(Add):
    def backward(self, grad):
        # takes one broadcast copy instead of summing them all
        g_y = grad.reshape(-1, *self.y_shape)[0]
        return unbroadcast(grad, self.x_shape), g_y


class AddReturnsBroadcastShape(Add):
    def backward(self, grad):
        return grad, grad


def rand(*shape, seed=0):
    return tg.Tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=True)


def test_correct_ops_pass():
    gradcheck(lambda a: Softmax.apply(a, axis=-1), [rand(3, 4)])
    gradcheck(lambda a, b: MatMul.apply(a, b), [rand(4, 4), rand(4, 4, seed=1)])
    gradcheck(lambda a, b: Add.apply(a, b), [rand(3, 4), rand(4, seed=1)])


def test_catches_softmax_with_zero_backward():
    with pytest.raises(GradcheckError, match=r"input 0 .*analytic 0 vs numeric"):
        gradcheck(lambda a: SoftmaxZeroBackward.apply(a, axis=-1), [rand(3, 4)])


def test_catches_matmul_missing_transpose_even_on_square_matrices():
    with pytest.raises(GradcheckError):
        gradcheck(lambda a, b: MatMulMissingTranspose.apply(a, b), [rand(4, 4), rand(4, 4, seed=1)])


def test_catches_broadcast_gradient_not_summed_back():
    with pytest.raises(GradcheckError, match="input 1"):
        gradcheck(lambda a, b: AddNotSummedBack.apply(a, b), [rand(3, 4), rand(4, seed=1)])
    # returning the broadcast shape itself is stopped by the engine's shape check
    with pytest.raises(tg.GradientShapeError, match=r"AddReturnsBroadcastShape.backward .* \(3, 4\) .* \(4,\)"):
        gradcheck(lambda a, b: AddReturnsBroadcastShape.apply(a, b), [rand(3, 4), rand(4, seed=1)])


def test_random_direction_mode_catches_bugs_in_large_inputs():
    big = rand(40, 40)
    report = gradcheck(lambda a: Softmax.apply(a, axis=-1), [big])
    assert report["mode"] == "directions"
    with pytest.raises(GradcheckError, match="random direction"):
        gradcheck(lambda a: SoftmaxZeroBackward.apply(a, axis=-1), [big])


def test_upstream_gradient_is_random_not_ones():
    # softmax's output sums to 1, so with upstream ones its true gradient is zero and the buggy
    # zero-backward would pass: the random upstream gradient is what catches it
    with pytest.raises(GradcheckError):
        gradcheck(lambda a: SoftmaxZeroBackward.apply(a, axis=-1), [rand(2, 5)])
    gradcheck(lambda a: SoftmaxZeroBackward.apply(a, axis=-1), [rand(2, 5)], upstream=np.ones((2, 5)))


def test_never_mutates_the_callers_arrays_and_grads():
    x = rand(3, 3)
    before = x.data.copy()
    gradcheck(lambda a: (a * a).sum(0), [x])
    np.testing.assert_array_equal(x.data, before)
    assert x.grad is None


def test_needs_float64():
    with pytest.raises(TypeError, match="float64"):
        gradcheck(lambda a: a * 2, [tg.Tensor(np.ones(3, dtype=np.float32), requires_grad=True)])
