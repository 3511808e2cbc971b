"""The package's random numbers: one seeded generator, as ``torch.manual_seed``.

Parameters are always drawn on the host with NumPy's PCG64 and then moved, so the same seed gives
the same initial model on "cpu" and "cuda". Dropout masks are drawn on the tensor's device (a
host round trip per step would be slow on a GPU); on the CPU they come from the same generator,
whose state a checkpoint saves so that a resumed run continues bit for bit.
"""
import numpy as np

from . import backend

_generator = np.random.Generator(np.random.PCG64(0))
_device_generators = {}


def manual_seed(seed):
    """Seed every generator of the package (host, and each device's)."""
    global _generator
    _generator = np.random.Generator(np.random.PCG64(int(seed)))
    _device_generators.clear()
    for device in list(backend._MODULES):
        if device != "cpu":
            _device_generators[device] = _new_device_generator(device, seed)
    return _generator


def _new_device_generator(device, seed):
    xp = backend.get_array_module(device)
    if xp.__name__ == "cupy":
        return xp.random.RandomState(int(seed) + 1)
    return None


def generator():
    """The host generator (a numpy.random.Generator)."""
    return _generator


def get_rng_state():
    """The host generator's state, as a JSON-friendly dict (saved in checkpoints)."""
    return _generator.bit_generator.state


def set_rng_state(state):
    _generator.bit_generator.state = state


def uniform(shape, device="cpu", dtype=np.float32):
    """U[0, 1) samples on `device` (used by dropout). CuPy draws on the GPU from its own generator
    (seeded from ours); every other device draws on the host, exactly as "cpu" does."""
    if device == "cpu" or backend.get_array_module(device).__name__ != "cupy":
        host = _generator.random(shape, dtype=np.float64).astype(dtype, copy=False)
        return host if device == "cpu" else backend.to_device(host, device)
    gen = _device_generators.get(device)
    if gen is None:
        gen = _device_generators[device] = _new_device_generator(device, _generator.integers(2**31))
    return gen.random_sample(shape, dtype=np.float32 if dtype == np.float32 else np.float64)
