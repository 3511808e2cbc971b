"""tinygrad_lm: a NumPy-only engine for language models that a learner can read line by line."""
from . import backend, random
from .backend import DeviceError
from .random import manual_seed
from .tensor import Function, GradientShapeError, Tensor, cat, is_grad_enabled, no_grad, stack, tensor, where

__version__ = "0.1.0"

__all__ = ["Tensor", "tensor", "Function", "no_grad", "is_grad_enabled", "GradientShapeError",
           "DeviceError", "manual_seed", "cat", "stack", "where", "backend", "random"]
