"""Parameter initialisers. Values are drawn on the host from the package's seeded generator
(tinygrad_lm.random), so a seed gives the same model on every device."""
import math


from .. import random


def uniform_(p, low, high):
    p.data[...] = _put(p, random.generator().uniform(low, high, size=p.shape))
    return p


def normal_(p, mean=0.0, std=1.0):
    p.data[...] = _put(p, random.generator().normal(mean, std, size=p.shape))
    return p


def zeros_(p):
    p.data[...] = 0
    return p


def ones_(p):
    p.data[...] = 1
    return p


def _put(p, host_values):
    from .. import backend
    return backend.to_device(host_values.astype(p.dtype), p.device)


def linear_default_(weight, bias=None):
    """PyTorch's nn.Linear default: kaiming_uniform(a=sqrt 5) == U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    for the weight, and the same bound for the bias."""
    bound = 1 / math.sqrt(weight.shape[1]) if weight.shape[1] > 0 else 0
    uniform_(weight, -bound, bound)
    if bias is not None:
        uniform_(bias, -bound, bound)


def gpt2_init_(model, n_layer, std=0.02):
    """GPT-2's initialisation: every Linear and Embedding weight ~ N(0, 0.02), biases 0, LayerNorm
    at (1, 0); the projections that write into the residual stream (names ending in c_proj.weight)
    get std 0.02 / sqrt(2 n_layer), so the residual's variance does not grow with depth."""
    from .layers import Embedding, LayerNorm, Linear
    for name, m in model.named_modules():
        if isinstance(m, Linear):
            scale = 1 / math.sqrt(2 * n_layer) if name.endswith("c_proj") else 1.0
            normal_(m.weight, 0.0, std * scale)
            if m.bias is not None:
                zeros_(m.bias)
        elif isinstance(m, Embedding):
            normal_(m.weight, 0.0, std)
        elif isinstance(m, LayerNorm):
            ones_(m.weight)
            if m.bias is not None:
                zeros_(m.bias)


