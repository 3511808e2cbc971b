"""Every primitive op, one ``Function`` subclass each, with forward and backward side by side.

The Tensor methods that call them (``x + y`` -> ``Add.apply``, ``x.sum(dim)`` -> ``Sum.apply``...)
are defined on the class in ``tensor.py``; the checks of their arguments are in ``checks.py``.
"""
from .arithmetic import Add, Div, Maximum, Minimum, Mul, Neg, Pow, PowTensor, Sub, unbroadcast
from .checks import check_indices
from .dpo import DPOLoss
from .dtypes import Cast
from .fused import (CrossEntropy, LayerNorm, Linear, PackedCausalAttention, RMSNorm, ScaledDotProductAttention,
                    causal_mask)
from .lora import LoRALinear
from .matmul import MatMul
from .nn import Dropout, Embedding
from .recurrent import GRUSequence, LSTMSequence, RNNSequence
from .rotary import Rotary
from .reduce import Cumsum, Max, Mean, Min, Std, Sum, Var
from .shape import (Clone, Concatenate, Expand, Flip, Gather, GetItem, MaskedFill, Permute, Repeat, Reshape,
                    Where, scatter_add)
from .softmax import LogSoftmax, LogSumExp, Softmax
from .unary import Abs, Clamp, Exp, GELUErf, GELUTanh, Log, ReLU, Rsqrt, Sigmoid, SiLU, Sqrt, SwiGLU, Tanh

__all__ = [
    "Add", "Sub", "Mul", "Div", "Neg", "Pow", "MatMul", "Sum", "Mean", "Max", "Var", "Exp", "Log",
    "Sqrt", "Tanh", "Sigmoid", "ReLU", "GELUTanh", "GELUErf", "Softmax", "LogSoftmax", "Reshape",
    "Permute", "GetItem", "Concatenate", "MaskedFill", "Where", "Embedding", "Dropout",
    "CrossEntropy", "LayerNorm", "RMSNorm", "Linear", "PackedCausalAttention", "ScaledDotProductAttention",
    "unbroadcast", "scatter_add", "check_indices", "causal_mask",
    "PowTensor", "Maximum", "Minimum", "Min", "Cumsum", "Abs", "Clamp", "Rsqrt", "LogSumExp", "Expand",
    "Flip", "Repeat", "Gather", "Clone", "Cast", "Std", "RNNSequence", "LSTMSequence", "GRUSequence",
    "SiLU", "SwiGLU", "Rotary", "LoRALinear", "DPOLoss",
]
