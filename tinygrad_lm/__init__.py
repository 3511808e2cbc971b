"""tinygrad_lm: a NumPy-only engine for language models that a learner can read line by line."""
from . import backend, random
from .backend import DeviceError
from .creation import (arange, eye, from_numpy, full, ones, ones_like, rand, rand_like, randint, randint_like, randn,
                       randn_like, tensor, zeros, zeros_like)
from .ops.dtypes import float16, float32, float64, int8, int16, int32, int64, uint8
from .ops.dtypes import bool_ as bool  # noqa: A001  (torch.bool; shadows the builtin only here)
from .random import manual_seed
from .tensor import (Function, GradientShapeError, Tensor, cat, is_grad_enabled, maximum, minimum, no_grad, split,
                     stack, std_mean, tril, triu, var_mean, where)

__version__ = "0.1.0"

__all__ = ["Tensor", "tensor", "Function", "no_grad", "is_grad_enabled", "GradientShapeError",
           "DeviceError", "manual_seed", "cat", "stack", "where", "backend", "random",
           "from_numpy", "arange", "zeros", "ones", "full", "eye", "zeros_like", "ones_like", "randn",
           "rand", "randint", "randn_like", "rand_like", "randint_like", "maximum", "minimum", "split", "tril",
           "triu", "var_mean", "std_mean", "float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8"]
