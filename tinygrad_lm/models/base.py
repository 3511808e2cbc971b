"""What every model family's config shares: it is checked when made (and again by the model, since
fields may be assigned later), and it travels in checkpoints as a plain dict."""
import dataclasses
import itertools
import math
import numbers
import os

import numpy as np

from .. import backend
from ..errors import ConfigError
from ..ops.checks import check_indices
from ..tensor import Tensor


class ModelConfig:
    """Base of the config dataclasses (GPTConfig, BigramConfig...): subclasses add fields,
    ``validate`` and ``parameter_shapes``."""

    def __post_init__(self):
        self.validate()

    def validate(self):
        """Raise ConfigError naming every setting that is out of range."""

    def iter_parameter_shapes(self):
        """(state_dict name, shape) of each parameter of the model this config builds, computed
        without building it: a checkpoint is checked against them before any memory is spent.
        A family that does not say returns None."""
        return None

    def parameter_shapes(self, limit=None):
        """{name: shape} from iter_parameter_shapes (None when the family does not say); with
        `limit`, at most limit + 1 entries (enough to tell that a config declares more than a
        file holds, without enumerating a billion layers)."""
        shapes = self.iter_parameter_shapes()
        if shapes is None:
            return None
        return dict(shapes if limit is None else itertools.islice(shapes, limit + 1))

    def buffer_numel(self):
        """How many numbers the model's fixed tables hold (its buffers and the rotary cos/sin tables),
        also without building it."""
        return 0

    def num_parameters_estimate(self):
        """How many parameters the model this config builds has (tied weights once), by arithmetic,
        in O(1) however many layers: a family that does not say returns None."""
        return None

    def check_memory(self, itemsize=4, copies=1, what="the model"):
        """Raise ConfigError when `copies` copies of the parameters (plus the buffers), at `itemsize`
        bytes a number, need more than this machine's physical memory: checked before a model is
        built (copies=1: GPT and Bigram do it) or trained (parameters, gradients and the optimizer's
        moments: config.make_optimizer), so an absurd shape (n_layer=10**9) is refused at once
        instead of filling the memory or running for hours."""
        n = self.num_parameters_estimate()
        memory = physical_memory()
        if n is None or memory is None:
            return
        need = (n * copies + self.buffer_numel()) * itemsize
        if need > memory:
            copies_text = f" x {copies} copies" if copies > 1 else ""
            raise ConfigError(f"{type(self).__name__}: {what} needs {n:,} parameters{copies_text} at {itemsize} bytes "
                              f"(about {_gib(need)} GiB), more than this machine's {_gib(memory)} GiB of memory: "
                              "make it smaller (n_layer, n_embd, block_size, vocab_size)")

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d):
        """The config a dict describes (a checkpoint's), with every field's type checked first: a
        float where an int belongs (n_layer=1e12) is refused, not used."""
        if not isinstance(d, dict):
            raise ConfigError(f"{cls.__name__}: expected a dict of fields, got {type(d).__name__}")
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ConfigError(f"{cls.__name__}: unknown fields {sorted(map(str, unknown))}")
        check_field_types(cls, d)
        return cls(**d)


def physical_memory():
    """Bytes of physical memory of this machine, or None where the system does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):         # not POSIX, or the name unknown here
        return None


def _gib(n):
    return f"{n / 2 ** 30:,.1f}" if n < 2 ** 60 else f"{n / 2 ** 30:.2e}"


# What a config field's declared type admits, for every config (the model's, TrainConfig) and the
# command line's flags: one rule. bool is not an int, an int is a fine float (lr=1), a float must
# be finite, and None is allowed only where the field's default is None.
KIND_NAMES = {int: "an integer", float: "a finite number", bool: "true or false", str: "a text"}


def field_kind(f):
    """int, float, bool or str: the type a dataclass field declares (None for any other type)."""
    name = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")
    return {"int": int, "float": float, "bool": bool, "str": str}.get(name)


def fits_kind(value, kind):
    if kind is float:
        return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if kind is int:                                    # NumPy integers too
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)
    return kind is None or isinstance(value, kind)


def field_type_problems(cls, d):
    """'name=value must be an integer' for each value in `d` that its field's type does not admit."""
    return [f"{f.name}={d[f.name]!r} must be {KIND_NAMES[field_kind(f)]}" for f in dataclasses.fields(cls)
            if f.name in d and not (d[f.name] is None and f.default is None) and not fits_kind(d[f.name], field_kind(f))]


def check_field_types(cls, d):
    """Raise ConfigError naming every value in `d` that its dataclass field's type does not admit."""
    problems = field_type_problems(cls, d)
    if problems:
        raise ConfigError(f"{cls.__name__}: " + "; ".join(problems))

def check_token_ids(ids, size, what, device=None, ignore=None, shape=None, max_length=None):
    """Every family's one check of its integer inputs (token ids, labels, token types): integers of
    shape (batch, time) (or `shape`), at most `max_length` positions, each in [0, size) or equal to
    `ignore` (-100: a label that counts for nothing). They are checked where they already are (a
    NumPy batch on the host, before it is copied: a GPU step makes no device-to-host copy for it;
    CuPy would wrap an index of -1 around silently), then moved to `device` (None: left there).
    `what` names them in every error, e.g. "GPT: idx (token ids, vocab_size=13)"."""
    data = ids.data if isinstance(ids, Tensor) else ids
    if not hasattr(data, "dtype"):
        data = np.asarray(data)
    if data.dtype.kind not in "iu":
        raise TypeError(f"{what} must hold integer ids, got dtype {data.dtype}")
    if data.ndim != 2 if shape is None else tuple(data.shape) != tuple(shape):
        raise ValueError(f"{what} must have shape {'(batch, time)' if shape is None else tuple(shape)}, "
                         f"got {tuple(data.shape)}")
    if max_length is not None and data.shape[1] > max_length:
        raise ValueError(f"{what} has {data.shape[1]} positions, more than block_size={max_length}")
    check_indices(backend.get_array_module(backend.device_of(data)), data, size, what, ignore=ignore)
    return data if device is None else backend.to_device(data, device)
