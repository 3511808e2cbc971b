"""Recurrent layers as torch.nn: RNN (tanh or relu), LSTM and GRU over whole sequences, and the
one-step cells RNNCell, LSTMCell and GRUCell, with PyTorch's arguments, parameter names, gate
order, shapes and initialisation (a torch state_dict loads into them and back).

One time step, with x_t the input, h and c the previous states, and every weight stored
(gates * hidden, in) as PyTorch stores it:

  RNN    h_t = tanh(W_ih x_t + b_ih + W_hh h + b_hh)            (or relu)
  LSTM   i, f, g, o = the four chunks of W_ih x_t + b_ih + W_hh h + b_hh, in that order
         c_t = sigmoid(f) * c + sigmoid(i) * tanh(g)
         h_t = sigmoid(o) * tanh(c_t)
  GRU    r, z, n parts of W_ih x_t + b_ih (x_r, x_z, x_n) and of W_hh h + b_hh (h_r, h_z, h_n)
         r = sigmoid(x_r + h_r),  z = sigmoid(x_z + h_z)
         n = tanh(x_n + r * h_n)             (r scales W_hn h + b_hn, its bias included)
         h_t = (1 - z) * n + z * h

Two implementations compute the same function, as attention has two (nn/attention.py):
- composite (``fused=False``): the step functions below, built from primitive Tensor ops and
  called once per time step; autograd does backpropagation through time by walking the
  unrolled graph (a few nodes per step). Easy to read, slow for long sequences.
- fused (``fused=True``, the default): one op per layer and direction over the whole sequence
  (ops/recurrent.py), whose backward is BPTT written out by hand.
Both compute W_ih x_t + b_ih for all time steps at once (one matrix multiply): only the
recurrent product W_hh h has to wait for the previous step.

Shapes (as PyTorch): input (T, B, input_size), or (B, T, input_size) with batch_first, or
unbatched (T, input_size); h_0 and c_0 (num_layers * num_directions, B, hidden_size), or without
the batch dim for unbatched input, and zeros when not given. LSTM returns
(output, (h_n, c_n)), RNN and GRU return (output, h_n); output holds the last layer's h_t for
every t, both directions side by side when bidirectional.
"""
import math
import numbers
import warnings

import numpy as np

from ..creation import zeros
from ..errors import ConfigError
from ..ops.recurrent import GRUSequence, LSTMSequence, RNNSequence
from ..tensor import Tensor, cat, stack
from . import functional as F
from . import init
from .module import Module, Parameter

GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}     # gate blocks stacked in each weight
_NAMES = {"RNN_TANH": "RNN", "RNN_RELU": "RNN", "LSTM": "LSTM", "GRU": "GRU"}


# ------------------------------------------------------------------ one time step, from primitives
def rnn_step(xw_t, h, w_hh, b_hh=None, nonlinearity="tanh"):
    """One Elman RNN step. xw_t = W_ih x_t + b_ih, computed before (for all t at once)."""
    a = xw_t + F.linear_composite(h, w_hh, b_hh)
    return a.tanh() if nonlinearity == "tanh" else a.relu()


def lstm_step(xw_t, h, c, w_hh, b_hh=None, w_hr=None):
    """One LSTM step: returns (h_t, c_t). Gates in PyTorch's order i, f, g, o. With a projection
    (proj_size P > 0): h_t = W_hr (o * tanh(c_t)), P numbers instead of H (the state the next
    step's W_hh (4H, P) reads, and the layer's output)."""
    i, f, g, o = (xw_t + F.linear_composite(h, w_hh, b_hh)).chunk(4, dim=-1)
    c = f.sigmoid() * c + i.sigmoid() * g.tanh()
    h = o.sigmoid() * c.tanh()
    return (h if w_hr is None else F.linear_composite(h, w_hr)), c


def gru_step(xw_t, h, w_hh, b_hh=None):
    """One GRU step. The reset gate r scales the whole hidden part of n, b_hn included (PyTorch's
    and cuDNN's form; the GRU paper puts r before W_hn)."""
    x_r, x_z, x_n = xw_t.chunk(3, dim=-1)
    h_r, h_z, h_n = F.linear_composite(h, w_hh, b_hh).chunk(3, dim=-1)
    r = (x_r + h_r).sigmoid()
    z = (x_z + h_z).sigmoid()
    n = (x_n + r * h_n).tanh()
    return (1 - z) * n + z * h


def _step(mode, xw_t, h, c, w_hh, b_hh, w_hr=None):
    """One step of any mode: (h_t, c_t), c_t None except for the LSTM."""
    if mode == "LSTM":
        return lstm_step(xw_t, h, c, w_hh, b_hh, w_hr)
    if mode == "GRU":
        return gru_step(xw_t, h, w_hh, b_hh), None
    return rnn_step(xw_t, h, w_hh, b_hh, "tanh" if mode == "RNN_TANH" else "relu"), None


def layer_composite(mode, x, h, c, w_ih, w_hh, b_ih=None, b_hh=None, reverse=False, w_hr=None):
    """One layer, one direction, over a whole (T, B, C) sequence, from primitive ops.

    Returns (output (T, B, H), h_n, c_n); c_n is None except for the LSTM. reverse=True reads
    the sequence from its last step to its first (the backward direction of a bidirectional
    layer); output[t] is still the state at time t. w_hr: an LSTM's projection (proj_size).
    """
    xw = F.linear_composite(x, w_ih, b_ih)                     # (T, B, gates * H): every step at once
    T = x.shape[0]
    outputs = [None] * T
    for t in (reversed(range(T)) if reverse else range(T)):
        h, c = _step(mode, xw[t], h, c, w_hh, b_hh, w_hr)
        outputs[t] = h
    return stack(outputs), h, c


def layer_fused(mode, x, h, c, w_ih, w_hh, b_ih=None, b_hh=None, reverse=False):
    """The same as layer_composite, as one op (ops/recurrent.py), whose one output this slices."""
    weights = (w_ih, w_hh) if b_ih is None else (w_ih, w_hh, b_ih, b_hh)
    T, last = x.shape[0], 0 if reverse else x.shape[0] - 1          # h_n: the last step computed
    if mode == "LSTM":
        out = LSTMSequence.apply(x, h, c, *weights, reverse=reverse)       # (T + 1, B, H): h_1..h_T, c_n
        return out[:T], out[last], out[T]
    if mode == "GRU":
        out = GRUSequence.apply(x, h, *weights, reverse=reverse)
    else:
        out = RNNSequence.apply(x, h, *weights, nonlinearity="tanh" if mode == "RNN_TANH" else "relu",
                                reverse=reverse)
    return out, out[last], None


# ------------------------------------------------------------------ argument checks (PyTorch's messages)
def _check_size(value, what):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{what} should be of type int, got: {type(value).__name__}")
    if value <= 0:
        raise ConfigError(f"{what} must be greater than zero, got {value}")


def _check_flag(value, what):
    if not isinstance(value, bool):
        raise TypeError(f"{what} should be of type bool, got: {type(value).__name__}")


def _nonlinearity_mode(nonlinearity):
    if nonlinearity not in ("tanh", "relu"):
        raise ConfigError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
    return "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"


def _check_tensor(value, what, who):
    if not isinstance(value, Tensor):
        raise TypeError(f"{who}: {what} must be a Tensor, got {type(value).__name__}")


def _check_dtype(value, weight, what, who):
    if value.dtype != weight.dtype:
        raise ValueError(f"{who}: {what} dtype ({value.dtype}) does not match weight dtype ({weight.dtype}). "
                         f"Convert the {what}: .to(dtype={weight.dtype}), or the model: .to(dtype={value.dtype})")


def _state_list(hx, lstm, who, h, c):
    """hx as a list of tensors: [h], or [h, c] for an LSTM; the other form is refused with a hint."""
    if lstm:
        if not isinstance(hx, (tuple, list)) or len(hx) != 2:
            raise TypeError(f"{who}: hx must be a tuple ({h}, {c}) of two tensors, got {type(hx).__name__}")
    elif isinstance(hx, (tuple, list)):
        raise TypeError(f"{who}: hx must be one tensor {h}, got a {type(hx).__name__} (a pair ({h}, {c}) is an "
                        "LSTM's state)")
    states = list(hx) if lstm else [hx]
    for k, state in enumerate(states):
        _check_tensor(state, f"hx[{k}]" if lstm else "hx", who)
    return states


def _parameters_named(module, names):
    return [getattr(module, n) for n in names]


# ------------------------------------------------------------------ whole sequences
class RNNBase(Module):
    """The common part of RNN, LSTM and GRU: parameters, checks, layers and directions.

    `mode` is "RNN_TANH", "RNN_RELU", "LSTM" or "GRU". Parameters, per layer k and direction:
    weight_ih_l{k} (gates * H, in), weight_hh_l{k} (gates * H, H), bias_ih_l{k}, bias_hh_l{k}
    (gates * H,), with "_reverse" appended for the backward direction; in is input_size for layer 0,
    H * num_directions above. An LSTM with proj_size P > 0 (PyTorch's LSTMP) adds weight_hr_l{k}
    (P, H), and its states h (so weight_hh's columns, the output and the next layer's input) hold P
    numbers; it runs on the composite path. Every one is drawn from U(-1/sqrt(H), 1/sqrt(H)), as PyTorch.
    Dropout (training mode only) is applied to the output of every layer but the last.
    ``fused`` picks the implementation (see the module docstring); both give the same results.
    """

    def __init__(self, mode, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, proj_size=0, device=None, dtype=None, *, fused=True):
        super().__init__()
        who = _NAMES[mode]
        for value, what in ((input_size, "input_size"), (hidden_size, "hidden_size"), (num_layers, "num_layers")):
            _check_size(value, what)
        for value, what in ((bias, "bias"), (batch_first, "batch_first"), (bidirectional, "bidirectional")):
            _check_flag(value, what)
        if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real) or not 0 <= dropout <= 1:
            raise ConfigError(f"{who}: dropout should be a number in range [0, 1] representing the probability "
                              f"of an element being zeroed, got {dropout!r}")
        if dropout > 0 and num_layers == 1:
            warnings.warn(f"{who}: dropout option adds dropout after all but last recurrent layer, so non-zero "
                          f"dropout expects num_layers greater than 1, but got dropout={dropout} and "
                          f"num_layers={num_layers}", stacklevel=3)
        if isinstance(proj_size, bool) or not isinstance(proj_size, numbers.Integral) or proj_size < 0:
            raise ValueError("proj_size should be a positive integer or zero to disable projections")
        if proj_size >= hidden_size:
            raise ValueError("proj_size has to be smaller than hidden_size")
        if proj_size and mode != "LSTM":
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        self.mode, self.input_size, self.hidden_size, self.num_layers = mode, input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional, self.proj_size, self.fused = bidirectional, int(proj_size), fused
        gate_size = GATES[mode] * hidden_size
        num_directions = 2 if bidirectional else 1
        state_size = self.proj_size or hidden_size        # what h holds: P numbers with a projection
        self._all_weights = []                 # per layer and direction: its parameters' names
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else state_size * num_directions
            for direction in range(num_directions):
                suffix = f"_l{layer}" + ("_reverse" if direction else "")
                shapes = {f"weight_ih{suffix}": (gate_size, layer_input), f"weight_hh{suffix}": (gate_size, state_size)}
                if bias:
                    shapes.update({f"bias_ih{suffix}": (gate_size,), f"bias_hh{suffix}": (gate_size,)})
                if self.proj_size:
                    shapes[f"weight_hr{suffix}"] = (self.proj_size, hidden_size)
                for name, shape in shapes.items():
                    setattr(self, name, Parameter(np.zeros(shape, dtype=dtype or np.float32)))
                self._all_weights.append(list(shapes))
        self.reset_parameters()
        if device is not None:
            self.to(device)

    def reset_parameters(self):
        """Every weight and bias ~ U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)), drawn in
        parameter order from the package's generator (PyTorch's rule, our random numbers)."""
        bound = 1 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    @property
    def all_weights(self):
        """The parameters, one list per layer and direction (as PyTorch's all_weights)."""
        return [_parameters_named(self, names) for names in self._all_weights]

    @property
    def _name(self):
        return _NAMES[self.mode]

    def forward(self, input, hx=None):
        x, batched = self._check_input(input)
        h0, c0 = self._initial_state(hx, x, batched)
        # the fused op has no projection: proj_size runs on the composite path (same numbers)
        layer_fn = layer_fused if self.fused and not self.proj_size else layer_composite
        directions = 2 if self.bidirectional else 1
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(directions):
                k = layer * directions + direction
                weights = _parameters_named(self, self._all_weights[k])
                projection = {"w_hr": weights.pop()} if self.proj_size else {}
                out, h, c = layer_fn(self.mode, x, h0[k], None if c0 is None else c0[k],
                                     *weights, reverse=direction == 1, **projection)
                outputs.append(out)
                h_n.append(h)
                c_n.append(c)
            x = outputs[0] if directions == 1 else cat(outputs, dim=-1)
            if layer < self.num_layers - 1:                  # between layers, never after the last
                x = F.dropout(x, self.dropout, self.training)
        h_n = stack(h_n)
        c_n = stack(c_n) if c0 is not None else None
        if not batched:
            x, h_n = x.squeeze(1), h_n.squeeze(1)
            c_n = c_n.squeeze(1) if c_n is not None else None
        elif self.batch_first:
            x = x.transpose(0, 1)
        return x, ((h_n, c_n) if self.mode == "LSTM" else h_n)

    def _check_input(self, input):
        """input as a (T, B, input_size) tensor, and whether it had a batch dim."""
        who, weight = self._name, self.weight_ih_l0
        _check_tensor(input, "input", who)
        if input.ndim not in (2, 3):
            raise ValueError(f"{who}: Expected input to be 2D or 3D, got {input.ndim}D instead")
        if input.shape[-1] != self.input_size:
            raise RuntimeError(f"{who}: input.size(-1) must be equal to input_size. Expected {self.input_size}, "
                               f"got {input.shape[-1]} (input shape {input.shape})")
        _check_dtype(input, weight, "input", who)
        batched = input.ndim == 3
        if not batched:
            x = input.unsqueeze(1)
        else:
            x = input.transpose(0, 1) if self.batch_first else input
        if x.shape[0] == 0:
            raise RuntimeError(f"{who}: Expected sequence length to be larger than 0 in RNN (input shape {input.shape})")
        return x, batched

    def _initial_state(self, hx, x, batched):
        """(h_0, c_0) as (num_layers * num_directions, B, H) tensors (c_0 None but for the LSTM)."""
        who = self._name
        shape = ((2 if self.bidirectional else 1) * self.num_layers, x.shape[1], self.hidden_size)
        h_shape = shape[:2] + (self.proj_size or self.hidden_size,)          # h: P numbers with a projection
        lstm = self.mode == "LSTM"
        if hx is None:
            h0 = zeros(*h_shape, dtype=x.dtype, device=x.device)
            return h0, (zeros(*shape, dtype=x.dtype, device=x.device) if lstm else None)
        states = _state_list(hx, lstm, who, "h_0", "c_0")
        want = 3 if batched else 2
        if any(s.ndim != want for s in states):
            kind = "batched 3-D" if batched else "unbatched 2-D"
            got = ", ".join(f"{s.ndim}-D" for s in states)
            raise RuntimeError(f"{who}: For {kind} input, hx{' and cx' if lstm else ''} should also be {want}-D "
                               f"but got {f'({got}) tensors' if lstm else f'{got} tensor'}")
        if not batched:
            states = [s.unsqueeze(1) for s in states]
        for k, state in enumerate(states):
            if state.shape != (h_shape if k == 0 else shape):
                which = f"hidden[{k}]" if lstm else "hidden"
                raise RuntimeError(f"{who}: Expected {which} size {h_shape if k == 0 else shape}, got "
                                   f"{list(state.shape)}")
            _check_dtype(state, self.weight_ih_l0, "hx" if not lstm else ("h_0", "c_0")[k], who)
        return states[0], (states[1] if lstm else None)

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.mode == "RNN_RELU":
            s += ", nonlinearity='relu'"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        if self.proj_size:
            s += f", proj_size={self.proj_size}"
        if not self.fused:
            s += ", fused=False"
        return s


class RNN(RNNBase):
    """Elman RNN, h_t = tanh(W_ih x_t + b_ih + W_hh h_(t-1) + b_hh) (or relu), stacked
    num_layers deep. forward(input, h_0=None) -> (output, h_n). See RNNBase and the module docstring."""

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, device=None, dtype=None, *, fused=True):
        super().__init__(_nonlinearity_mode(nonlinearity), input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, 0, device, dtype, fused=fused)
        self.nonlinearity = nonlinearity


class LSTM(RNNBase):
    """Long short-term memory, gates i, f, g, o. forward(input, (h_0, c_0)=None) ->
    (output, (h_n, c_n)). See RNNBase and the module docstring."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, proj_size=0, device=None, dtype=None, *, fused=True):
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         proj_size, device, dtype, fused=fused)


class GRU(RNNBase):
    """Gated recurrent unit, gates r, z, n. forward(input, h_0=None) -> (output, h_n).
    See RNNBase and the module docstring."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, device=None, dtype=None, *, fused=True):
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         0, device, dtype, fused=fused)


# ------------------------------------------------------------------ one step
class RNNCellBase(Module):
    """The common part of the cells: weight_ih (gates * H, in), weight_hh (gates * H, H), bias_ih,
    bias_hh (gates * H,), all ~ U(-1/sqrt(H), 1/sqrt(H)); one time step per call."""

    def __init__(self, mode, input_size, hidden_size, bias=True, device=None, dtype=None, *, fused=True):
        super().__init__()
        _check_size(input_size, "input_size")
        _check_size(hidden_size, "hidden_size")
        _check_flag(bias, "bias")
        self.mode, self.input_size, self.hidden_size, self.bias, self.fused = mode, input_size, hidden_size, bias, fused
        gate_size = GATES[mode] * hidden_size
        self.weight_ih = Parameter(np.zeros((gate_size, input_size), dtype=dtype or np.float32))
        self.weight_hh = Parameter(np.zeros((gate_size, hidden_size), dtype=dtype or np.float32))
        self.bias_ih = Parameter(np.zeros(gate_size, dtype=dtype or np.float32)) if bias else None
        self.bias_hh = Parameter(np.zeros(gate_size, dtype=dtype or np.float32)) if bias else None
        self.reset_parameters()
        if device is not None:
            self.to(device)

    reset_parameters = RNNBase.reset_parameters

    @property
    def _name(self):
        return type(self).__name__

    def forward(self, input, hx=None):
        who, lstm = self._name, self.mode == "LSTM"
        _check_tensor(input, "input", who)
        if input.ndim not in (1, 2):
            raise ValueError(f"{who}: Expected input to be 1D or 2D, got {input.ndim}D instead")
        if input.shape[-1] != self.input_size:
            raise RuntimeError(f"{who}: input has inconsistent input_size: got {input.shape[-1]} expected "
                               f"{self.input_size}")
        _check_dtype(input, self.weight_ih, "input", who)
        batched = input.ndim == 2
        x = input if batched else input.unsqueeze(0)
        states = self._states(hx, x, batched)
        weights = [p for p in (self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh) if p is not None]
        if self.fused:
            _, h, c = layer_fused(self.mode, x.unsqueeze(0), states[0], states[-1] if lstm else None, *weights)
        else:
            xw = F.linear_composite(x, self.weight_ih, self.bias_ih)
            h, c = _step(self.mode, xw, states[0], states[-1], self.weight_hh, self.bias_hh)
        if not batched:
            h, c = h.squeeze(0), (c.squeeze(0) if lstm else None)
        return (h, c) if lstm else h

    def _states(self, hx, x, batched):
        """[h] or [h, c], each (B, H), zeros when hx is None."""
        who, lstm, input_ndim = self._name, self.mode == "LSTM", 2 if batched else 1
        if hx is None:
            h = zeros(x.shape[0], self.hidden_size, dtype=x.dtype, device=x.device)
            return [h, h] if lstm else [h]
        states = _state_list(hx, lstm, who, "h", "c")
        for k, state in enumerate(states):
            what = f"hx[{k}]" if lstm else "hidden"
            if state.ndim not in (1, 2):
                raise ValueError(f"{who}: Expected {what} to be 1D or 2D, got {state.ndim}D instead")
            if state.ndim != input_ndim:
                raise RuntimeError(f"{who}: for {input_ndim}-D input, {what} should also be {input_ndim}-D but got "
                                   f"{state.ndim}-D")
        if not batched:
            states = [s.unsqueeze(0) for s in states]
        for k, state in enumerate(states):
            if state.shape[0] != x.shape[0]:
                raise RuntimeError(f"{who}: Input batch size {x.shape[0]} doesn't match hidden{k} batch size "
                                   f"{state.shape[0]}")
            if state.shape[-1] != self.hidden_size:
                raise RuntimeError(f"{who}: hidden{k} has inconsistent hidden_size: got {state.shape[-1]}, "
                                   f"expected {self.hidden_size}")
            _check_dtype(state, self.weight_ih, "hx", who)
        return states

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            s += ", bias=False"
        if self.mode == "RNN_RELU":
            s += ", nonlinearity='relu'"
        if not self.fused:
            s += ", fused=False"
        return s


class RNNCell(RNNCellBase):
    """h' = tanh(W_ih x + b_ih + W_hh h + b_hh) (or relu). forward(input, h=None) -> h'."""

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", device=None, dtype=None, *,
                 fused=True):
        super().__init__(_nonlinearity_mode(nonlinearity), input_size, hidden_size, bias, device, dtype, fused=fused)
        self.nonlinearity = nonlinearity


class LSTMCell(RNNCellBase):
    """One LSTM step. forward(input, (h, c)=None) -> (h', c')."""

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None, *, fused=True):
        super().__init__("LSTM", input_size, hidden_size, bias, device, dtype, fused=fused)


class GRUCell(RNNCellBase):
    """One GRU step. forward(input, h=None) -> h'."""

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None, *, fused=True):
        super().__init__("GRU", input_size, hidden_size, bias, device, dtype, fused=fused)
