"""Recurrent layers as fused ops: one op runs one layer, in one direction, over a whole sequence,
and its backward is backpropagation through time (BPTT) written out by hand.

Each has a twin built from primitive ops, nn/recurrent.py ``layer_composite`` (a Python loop of
small ops whose backward autograd derives); the tests show fused == composite == finite
differences == PyTorch. The equations and PyTorch's gate order are in nn/recurrent.py.

Shapes: x (T, B, C) time-major, states (B, H), weights (gates * H, C) and (gates * H, H) as
PyTorch stores them, biases (gates * H,). ``reverse=True`` runs from the last step to the first
(the backward direction of a bidirectional layer); outputs stay in time order either way.

Where the time goes, and what the ops do about it:
  - x_t W_ih^T is the same product at every step: it is computed for all T * B rows at once, one
    large matrix multiply, before the loop; only h W_hh^T has to wait for the previous step.
  - backward, likewise, first computes for all steps at once every local derivative that does
    not depend on the gradient flowing back through time; the loop then does a few elementwise
    products and one (B, gates * H) @ (gates * H, H) product per step.
  - the weight gradients sum over every step and batch row: one matrix multiply each, after the
    loop, over the gate gradients the loop stored (T * B rows), not one small product per step.
  - every array the loop writes is allocated once, before it, and written in place (``out=``).

A Function has one output, so the LSTM's is (T + 1, B, H): h_1 .. h_T, then the final cell state
c_T. Each module slices what it returns (output, h_n, c_n) from it.
"""
from ..function import Function
from .fused import column_sum


def _steps(T, reverse):
    """The time indices in the order they are computed."""
    return range(T - 1, -1, -1) if reverse else range(T)


def _previous(xp, states, first, reverse):
    """The state each step started from, in time order: (first, s_0, ..., s_(T-2)), or for the
    reverse direction (s_1, ..., s_(T-1), first). states (T, B, H) are the steps' own states."""
    prev = xp.empty_like(states)
    if reverse:
        prev[:-1], prev[-1] = states[1:], first
    else:
        prev[0], prev[1:] = first, states[:-1]
    return prev


def _transposed(xp, w):
    """W^T as a C-ordered copy: the small product h W^T in the loop runs about 10% faster on it
    than on the transposed view (measured with OpenBLAS, (16, 200) @ (200, 800))."""
    return xp.ascontiguousarray(w.T)


def _sigmoid_(xp, a):
    """a = sigmoid(a) in place, as 0.5 + 0.5 tanh(a / 2) (no exp to overflow; see ops/unary.py)."""
    a *= 0.5
    xp.tanh(a, out=a)
    a *= 0.5
    a += 0.5
    return a


class _Sequence(Function):
    """The parts the three ops share: the input projection before the loop, the weight gradients
    after it."""

    def _project_input(self, x, w_ih, bias):
        """x W_ih^T + bias for every step at once: (T, B, gates * H). Keeps x as a (T * B, C) matrix."""
        T, B, C = x.shape
        self.x2, self.w_ih = x.reshape(T * B, C), w_ih
        xw = self.x2 @ w_ih.T
        if bias is not None:
            xw += bias
        return xw.reshape(T, B, w_ih.shape[0])

    def _weight_grads(self, d_in, d_hidden, h_prev):
        """From the gate gradients of every step, to the input and weights (one product each):
           g_x = d_in @ W_ih,   g_W_ih = d_in^T @ x,   g_W_hh = d_hidden^T @ h_prev,
           g_b_ih = sum of d_in,   g_b_hh = sum of d_hidden   (sums over all steps and rows).
        d_in reaches x W_ih^T + b_ih, d_hidden reaches h W_hh^T + b_hh; the same array for the
        RNN and the LSTM, whose gates add the two."""
        T, B, H = h_prev.shape
        G, C = self.w_ih.shape                  # sizes written out: a batch of 0 rows is allowed
        d_in = d_in.reshape(T * B, G)
        d_hidden = d_in if d_hidden is None else d_hidden.reshape(T * B, G)
        g_x = (d_in @ self.w_ih).reshape(T, B, C)
        g_w_ih = d_in.T @ self.x2
        g_w_hh = d_hidden.T @ h_prev.reshape(T * B, H)
        if not self.has_bias:
            return g_x, g_w_ih, g_w_hh
        g_b_ih = column_sum(self.xp, d_in)
        g_b_hh = g_b_ih.copy() if d_hidden is d_in else column_sum(self.xp, d_hidden)
        return g_x, g_w_ih, g_w_hh, g_b_ih, g_b_hh


class RNNSequence(_Sequence):
    """An Elman RNN layer over a sequence: h_t = act(x_t W_ih^T + b_ih + h_(t-1) W_hh^T + b_hh),
    act = tanh or relu. Inputs x (T, B, C), h0 (B, H), W_ih, W_hh[, b_ih, b_hh]; output (T, B, H),
    the h_t of every step (h_n is its last computed row).

    Forward:
      1. xw = x W_ih^T + b_ih + b_hh                  for all steps at once (T * B rows)
      2. for each step t:  h_t = act(xw_t + h_(t-1) W_hh^T)
    Backward, with g_t = dL/dh_t from the output, and dh (the gradient carried back from step
    t + 1, zero at the last step):
      1. act'_t = 1 - h_t^2 (tanh) or [h_t > 0] (relu)             for all steps at once
      2. for each step, last to first:
           dh_t  = g_t + dh                                         (the total gradient of h_t)
           da_t  = dh_t * act'_t                                    (through the activation)
           dh    = da_t W_hh                                        (carried to h_(t-1))
      3. g_h0 = dh after the first step; the weights: see _weight_grads (da is both gates'
         gradient: the input and hidden products are added).
    """

    def forward(self, x, h0, w_ih, w_hh, b_ih=None, b_hh=None, *, nonlinearity="tanh", reverse=False):
        xp = self.xp
        self.has_bias = b_ih is not None
        a = self._project_input(x, w_ih, b_ih + b_hh if self.has_bias else None)   # step 1, then in place
        T, B, H = a.shape
        y = xp.empty_like(a)
        w_hh_t, h = _transposed(xp, w_hh), h0
        for t in _steps(T, reverse):                                               # step 2
            a_t = a[t]
            a_t += h @ w_hh_t
            h = xp.tanh(a_t, out=y[t]) if nonlinearity == "tanh" else xp.maximum(a_t, 0, out=y[t])
        self.y, self.h0, self.w_hh, self.nonlinearity, self.reverse = y, h0, w_hh, nonlinearity, reverse
        return y

    def backward(self, grad):
        xp, y = self.xp, self.y
        T, B, H = y.shape
        d_act = 1 - y * y if self.nonlinearity == "tanh" else (y > 0).astype(y.dtype)   # step 1
        da = xp.empty_like(y)
        dh, dh_t = xp.zeros_like(y[0]), xp.empty_like(y[0])
        for t in reversed(_steps(T, self.reverse)):                                    # step 2
            xp.add(grad[t], dh, out=dh_t)
            xp.multiply(dh_t, d_act[t], out=da[t])
            xp.matmul(da[t], self.w_hh, out=dh)
        g_x, *g_weights = self._weight_grads(da, None, _previous(xp, y, self.h0, self.reverse))   # step 3
        return (g_x, dh, *g_weights)


class LSTMSequence(_Sequence):
    """An LSTM layer over a sequence. Inputs x (T, B, C), h0, c0 (B, H), W_ih, W_hh[, b_ih, b_hh];
    output (T + 1, B, H): h_1 .. h_T in time order, then the final cell state.

    Forward (gates in PyTorch's order i, f, g, o; sigma is the sigmoid):
      1. xw = x W_ih^T + b_ih + b_hh                  for all steps at once (T * B rows)
      2. for each step t:
           a = xw_t + h_(t-1) W_hh^T                  (B, 4H), split into a_i, a_f, a_g, a_o
           i = sigma(a_i), f = sigma(a_f), g = tanh(a_g), o = sigma(a_o)
           c_t = f * c_(t-1) + i * g
           h_t = o * tanh(c_t)
    Backward. Two gradients are carried from step t + 1 back to step t: dh to h_t (through the
    next step's gates) and dc to c_t (through c_(t+1) = f_(t+1) * c_t + ...). At the last step
    dh = 0 and dc = the gradient of the final cell state c_n. With g_t = dL/dh_t from the output:
      1. for all steps at once, the local derivatives that need no carried gradient:
           dh_dc = o * (1 - tanh(c_t)^2)                              (d h_t / d c_t)
           q_i   = g * i (1 - i)                                      (d c_t / d a_i)
           q_f   = c_(t-1) * f (1 - f)                                (d c_t / d a_f)
           q_g   = i * (1 - g^2)                                      (d c_t / d a_g)
           q_o   = tanh(c_t) * o (1 - o)                              (d h_t / d a_o)
      2. for each step, last to first:
           dh_t  = g_t + dh                                           (the total gradient of h_t)
           dc_t  = dc + dh_t * dh_dc                                  (the total gradient of c_t)
           da_i, da_f, da_g = dc_t * q_i, dc_t * q_f, dc_t * q_g      (the gate gradients)
           da_o  = dh_t * q_o
           dc    = dc_t * f                                           (carried to c_(t-1))
           dh    = [da_i da_f da_g da_o] W_hh                         (carried to h_(t-1))
      3. g_h0, g_c0 = dh, dc after the first step; the weights: see _weight_grads (da is both
         products' gradient: they are added before the gates).
    """

    def forward(self, x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None, *, reverse=False):
        xp = self.xp
        self.has_bias = b_ih is not None
        xw = self._project_input(x, w_ih, b_ih + b_hh if self.has_bias else None)  # step 1
        T, B, H4 = xw.shape
        H = H4 // 4
        gates = xw.reshape(T, B, 4, H)         # a, then i, f, g, o, written over xw step by step
        # sigma(a) = 0.5 + 0.5 tanh(a / 2): so all four gates are one tanh of the row scaled by
        # (1/2, 1/2, 1, 1/2), then scaled by (1/2, 1/2, 1, 1/2) and shifted by (1/2, 1/2, 0, 1/2)
        scale = xp.asarray([[0.5], [0.5], [1.0], [0.5]], dtype=xw.dtype)
        shift = xp.asarray([[0.5], [0.5], [0.0], [0.5]], dtype=xw.dtype)
        out = xp.empty((T + 1, B, H), dtype=xw.dtype)        # h_1 .. h_T, then c_T
        c_all, tanh_c = xp.empty((T, B, H), dtype=xw.dtype), xp.empty((T, B, H), dtype=xw.dtype)
        hw = xp.empty((B, H4), dtype=xw.dtype)
        ig = xp.empty((B, H), dtype=xw.dtype)
        w_hh_t, h, c = _transposed(xp, w_hh), h0, c0
        for t in _steps(T, reverse):                                               # step 2
            a = gates[t]
            a += xp.matmul(h, w_hh_t, out=hw).reshape(B, 4, H)
            a *= scale
            xp.tanh(a, out=a)
            a *= scale
            a += shift
            i, f, g, o = a[:, 0], a[:, 1], a[:, 2], a[:, 3]
            c = xp.multiply(f, c, out=c_all[t])
            c += xp.multiply(i, g, out=ig)
            h = xp.multiply(o, xp.tanh(c, out=tanh_c[t]), out=out[t])
        out[T] = c
        self.gates, self.c_all, self.tanh_c, self.out = gates, c_all, tanh_c, out
        self.h0, self.c0, self.w_hh, self.reverse = h0, c0, w_hh, reverse
        return out

    def backward(self, grad):
        xp, gates, tanh_c = self.xp, self.gates, self.tanh_c
        T, B, _, H = gates.shape
        i, f, g, o = gates[:, :, 0], gates[:, :, 1], gates[:, :, 2], gates[:, :, 3]
        c_prev = _previous(xp, self.c_all, self.c0, self.reverse)
        dh_dc = o * (1 - tanh_c * tanh_c)                                          # step 1
        q = xp.empty((T, B, 3, H), dtype=gates.dtype)           # q_i, q_f, q_g side by side
        xp.multiply(g, i * (1 - i), out=q[:, :, 0])
        xp.multiply(c_prev, f * (1 - f), out=q[:, :, 1])
        xp.multiply(i, 1 - g * g, out=q[:, :, 2])
        q_o = tanh_c * (o * (1 - o))
        da = xp.empty_like(gates)                                # (T, B, 4, H): da_i, da_f, da_g, da_o
        dh, dh_t = xp.zeros((B, H), dtype=gates.dtype), xp.empty((B, H), dtype=gates.dtype)
        dc = grad[T].copy()                  # the carried gradient of the cell state, updated in place
        for t in reversed(_steps(T, self.reverse)):                                # step 2
            xp.add(grad[t], dh, out=dh_t)
            dc += dh_t * dh_dc[t]                                    # now dc_t
            xp.multiply(dc[:, None, :], q[t], out=da[t, :, :3])
            xp.multiply(dh_t, q_o[t], out=da[t, :, 3])
            dc *= f[t]                                               # carried to c_(t-1)
            xp.matmul(da[t].reshape(B, 4 * H), self.w_hh, out=dh)
        h_prev = _previous(xp, self.out[:T], self.h0, self.reverse)               # step 3
        g_x, *g_weights = self._weight_grads(da, None, h_prev)
        return (g_x, dh, dc, *g_weights)


class GRUSequence(_Sequence):
    """A GRU layer over a sequence. Inputs x (T, B, C), h0 (B, H), W_ih, W_hh[, b_ih, b_hh];
    output (T, B, H), the h_t of every step.

    Forward (parts in PyTorch's order r, z, n):
      1. xw = x W_ih^T + b_ih                          for all steps at once: x_r, x_z, x_n
         (b_hr and b_hz are added here too: outside r, a bias is a bias)
      2. for each step t:
           hw = h_(t-1) W_hh^T + (0, 0, b_hn)          h_r, h_z, h_n (kept: h_n is needed below)
           r = sigma(x_r + h_r),  z = sigma(x_z + h_z)
           n = tanh(x_n + r * h_n)
           h_t = (1 - z) * n + z * h_(t-1)             (computed as n + z * (h_(t-1) - n))
    Backward, with dh carried back from step t + 1 (zero at the last step) and g_t = dL/dh_t:
      1. for all steps at once, the local derivatives that need no carried gradient:
           q_n = (1 - z) * (1 - n^2)                   (d h_t / d a_n, a_n = x_n + r * h_n)
           q_z = (h_(t-1) - n) * z (1 - z)             (d h_t / d a_z)
           q_r = h_n * r (1 - r)                       (d a_n / d a_r)
      2. for each step, last to first:
           dh_t = g_t + dh
           da_n = dh_t * q_n                           (to x_n: the input side of n)
           da_z = dh_t * q_z                           (to x_z and to h_z)
           da_r = da_n * q_r                           (to x_r and to h_r)
           dh_n = da_n * r                             (to h_n = W_hn h + b_hn: r scales it)
           dh   = dh_t * z + [da_r da_z dh_n] W_hh     (carried to h_(t-1): directly through
                                                        z * h_(t-1), and through the gates)
      3. g_h0 = dh after the first step; the weights: see _weight_grads, with [da_r da_z da_n]
         on the input side and [da_r da_z dh_n] on the hidden side.
    """

    def forward(self, x, h0, w_ih, w_hh, b_ih=None, b_hh=None, *, reverse=False):
        xp = self.xp
        self.has_bias = b_ih is not None
        H = w_hh.shape[1]
        bias = None
        if self.has_bias:
            bias = b_ih.copy()
            bias[:2 * H] += b_hh[:2 * H]
        xw = self._project_input(x, w_ih, bias)                                    # step 1
        T, B, H3 = xw.shape
        gates = xw.reshape(T, B, 3, H)          # x_r, x_z, x_n, then r, z, n, written step by step
        hw = xp.empty((T, B, 3, H), dtype=xw.dtype)
        y = xp.empty((T, B, H), dtype=xw.dtype)
        w_hh_t, h = _transposed(xp, w_hh), h0
        for t in _steps(T, reverse):                                               # step 2
            a, hw_t = gates[t], hw[t]
            xp.matmul(h, w_hh_t, out=hw_t.reshape(B, H3))
            if b_hh is not None:
                hw_t[:, 2] += b_hh[2 * H:]          # b_hn: inside r * (W_hn h + b_hn)
            rz = a[:, :2]
            rz += hw_t[:, :2]
            _sigmoid_(xp, rz)
            r, z, n = a[:, 0], a[:, 1], a[:, 2]
            n += r * hw_t[:, 2]
            xp.tanh(n, out=n)
            h_t = xp.subtract(h, n, out=y[t])
            h_t *= z
            h = xp.add(h_t, n, out=h_t)
        self.gates, self.h_n, self.y, self.h0, self.w_hh, self.reverse = gates, hw[:, :, 2], y, h0, w_hh, reverse
        return y

    def backward(self, grad):
        xp, gates = self.xp, self.gates
        T, B, _, H = gates.shape
        r, z, n = gates[:, :, 0], gates[:, :, 1], gates[:, :, 2]
        h_prev = _previous(xp, self.y, self.h0, self.reverse)
        q_n = (1 - z) * (1 - n * n)                                                # step 1
        q_z = (h_prev - n) * (z * (1 - z))
        q_r = self.h_n * (r * (1 - r))
        d_in = xp.empty_like(gates)                 # da_r, da_z, da_n
        d_hidden = xp.empty_like(gates)             # da_r, da_z, dh_n
        dh, dh_t = xp.zeros((B, H), dtype=gates.dtype), xp.empty((B, H), dtype=gates.dtype)
        for t in reversed(_steps(T, self.reverse)):                                # step 2
            xp.add(grad[t], dh, out=dh_t)
            da_n = xp.multiply(dh_t, q_n[t], out=d_in[t, :, 2])
            xp.multiply(dh_t, q_z[t], out=d_in[t, :, 1])
            xp.multiply(da_n, q_r[t], out=d_in[t, :, 0])
            d_hidden[t, :, :2] = d_in[t, :, :2]
            xp.multiply(da_n, r[t], out=d_hidden[t, :, 2])
            xp.matmul(d_hidden[t].reshape(B, 3 * H), self.w_hh, out=dh)
            dh += dh_t * z[t]
        g_x, *g_weights = self._weight_grads(d_in, d_hidden, h_prev)              # step 3
        return (g_x, dh, *g_weights)
