"""LoRA (Hu et al., 2021, "LoRA: Low-Rank Adaptation of Large Language Models") as one op: a frozen
Linear W plus a trainable low-rank update, y = x W^T + b + s (x_a A^T) B^T, s = lora_alpha / r.
A is (r, in), B is (out, r): r (out + in) numbers train instead of out * in."""
from ..function import Function


class LoRALinear(Function):
    """y = x W^T + b + s (x_a A^T) B^T for x, x_a (..., in); x_a is x, or x after the adapter's
    dropout (peft drops the adapter's input only). W and b are frozen, passed as arrays, not
    inputs: no gradient is computed for them, the point of LoRA (neither the (out, in) product
    nor its buffer is ever made).

    Forward keeps x_a, h = x_a A^T (..., r) and the weights. Backward, with g = dL/dy flattened
    to (N, out) and N = batch * time:
      1. g_h   = s g B                    (N, out) @ (out, r): the gradient reaching the rank-r layer
      2. g_B   = s g^T h                  (out, N) @ (N, r)
      3. g_A   = g_h^T x_a                (r, N) @ (N, in)
      4. g_x   = g W                      the base's path          (N, out) @ (out, in)
      5. g_x_a = g_h A                    the adapter's path       (N, r) @ (r, in)
    When x_a is x (no dropout) the two paths add up in x's gradient. At B = 0 (peft's start) g_A
    is 0 and g_B is not: the first step moves B only.
    """

    def forward(self, x, x_a, lora_A, lora_B, weight, bias, scaling):
        self.x_shape = x.shape
        self.xa2 = x_a.reshape(-1, x_a.shape[-1])
        self.weight, self.A, self.B, self.s = weight, lora_A, lora_B, scaling
        self.h = self.xa2 @ lora_A.T
        y = x.reshape(-1, x.shape[-1]) @ weight.T
        y += scaling * (self.h @ lora_B.T)
        if bias is not None:
            y += bias
        return y.reshape(*x.shape[:-1], weight.shape[0])

    def backward(self, grad):
        need_x, need_x_a = self.needs_input_grad[:2]                  # not for the first layer's input
        g = grad.reshape(-1, grad.shape[-1])
        g_h = self.s * (g @ self.B)                                   # 1
        g_B = self.s * (g.T @ self.h)                                 # 2
        g_A = g_h.T @ self.xa2                                        # 3
        g_x = (g @ self.weight).reshape(self.x_shape) if need_x else None          # 4
        g_x_a = (g_h @ self.A).reshape(self.x_shape) if need_x_a else None         # 5
        return g_x, g_x_a, g_A, g_B
