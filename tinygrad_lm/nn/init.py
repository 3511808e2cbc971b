"""Parameter initialisers. Values are drawn on the host from the package's seeded generator
(tinygrad_lm.random), so a seed gives the same model on every device."""
import contextlib
import math

from .. import backend, random

_skip_random = False


@contextlib.contextmanager
def no_init_weights():
    """Within it, uniform_ and normal_ draw nothing (the parameters keep their zeros): for a model
    whose every weight is about to be loaded (from_pretrained), so that building it costs neither
    the random draws nor their float64 temporaries (a 49,152 x 576 embedding's are 226 MB).
    transformers' context of the same name does the same."""
    global _skip_random
    previous, _skip_random = _skip_random, True
    try:
        yield
    finally:
        _skip_random = previous


def uniform_(p, low, high):
    if not _skip_random:
        p.data[...] = _put(p, random.generator().uniform(low, high, size=p.shape))
    return p


def normal_(p, mean=0.0, std=1.0):
    if not _skip_random:
        p.data[...] = _put(p, random.generator().normal(mean, std, size=p.shape))
    return p


def zeros_(p):
    p.data[...] = 0
    return p


def ones_(p):
    p.data[...] = 1
    return p


def _put(p, host_values):
    return backend.to_device(host_values.astype(p.dtype), p.device)


def linear_default_(weight, bias=None):
    """PyTorch's nn.Linear default: kaiming_uniform(a=sqrt 5) == U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    for the weight, and the same bound for the bias."""
    bound = 1 / math.sqrt(weight.shape[1]) if weight.shape[1] > 0 else 0
    uniform_(weight, -bound, bound)
    if bias is not None:
        uniform_(bias, -bound, bound)


def gpt2_init_(model, n_layer, std=0.02):
    """GPT-2's initialisation: every weight matrix (Linear and Embedding) ~ N(0, 0.02), every bias 0,
    every weight vector (a LayerNorm's gain) 1; the projections that write into the residual stream
    (names ending in c_proj.weight) get std 0.02 / sqrt(2 n_layer), so the residual's variance does
    not grow with depth.

    The rule goes by parameter name and shape, not by layer class, so this module needs no import
    of layers.py (which imports it). Parameters are visited in registration order, the order in
    which the random values are drawn; a tied weight is drawn again under each of its names.
    """
    for name, p in model.named_parameters(remove_duplicate=False):
        if name == "bias" or name.endswith(".bias"):
            zeros_(p)
        elif p.ndim == 1:
            ones_(p)
        else:
            scale = 1 / math.sqrt(2 * n_layer) if name.endswith("c_proj.weight") else 1.0
            normal_(p, 0.0, std * scale)
