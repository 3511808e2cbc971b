"""DPO (Rafailov et al., 2023, "Direct Preference Optimization: Your Language Model is Secretly a
Reward Model") as one op: the preference loss of a batch of pairs from the sequence
log-probabilities of the policy and of the frozen reference."""
from ..function import Function


class DPOLoss(Function):
    """L = (1/N) sum_i -log sigmoid(z_i),   z_i = beta [(c_i - c_i^ref) - (r_i - r_i^ref)]

    c_i, r_i: the policy's log-probability of pair i's chosen and rejected answer (each a sum over
    the answer's tokens, given the prompt); c_i^ref, r_i^ref: the same under the reference model,
    constants (passed as arrays, not inputs: the reference is frozen, no gradient goes to it).
    beta (c_i - c_i^ref) is the "implicit reward" of the chosen answer, and z_i / beta how much
    more the policy prefers the chosen answer over the rejected one than the reference did.

    Forward, written so that nothing overflows for large |z|:
      -log sigmoid(z) = softplus(-z) = max(-z, 0) + log(1 + exp(-|z|))
    Backward, with g = dL (a scalar, the upstream gradient of the mean):
      1. d(-log sigmoid(z))/dz = -(1 - sigmoid(z)) = -sigmoid(-z)     (since d log sigmoid(z)/dz = 1 - sigmoid(z))
      2. dL/dz_i = -g sigmoid(-z_i) / N
      3. dL/dc_i =  beta dL/dz_i        (z grows with c_i: the chosen answer is pushed up ...)
      4. dL/dr_i = -beta dL/dz_i        (... and the rejected one down, by the same amount)
    sigmoid(-z_i) is the weight of pair i: near 1 while the policy still ranks the pair wrong
    (z_i << 0), near 0 once it ranks it right by a wide margin, so learned pairs stop pulling.
    At the start (policy = reference) every z_i is 0 and every pair pulls with beta / (2N).
    """

    def forward(self, policy_chosen, policy_rejected, reference_chosen, reference_rejected, beta):
        xp = self.xp
        z = beta * ((policy_chosen - reference_chosen) - (policy_rejected - reference_rejected))
        self.beta, self.n = beta, z.size
        self.weight = 0.5 * (1 + xp.tanh(-0.5 * z))                  # sigmoid(-z), by tanh: no overflow
        losses = xp.maximum(-z, 0) + xp.log1p(xp.exp(-xp.abs(z)))
        return losses.mean()

    def backward(self, grad):
        g_z = -grad * self.weight / self.n                           # 1, 2
        return self.beta * g_z, -self.beta * g_z                     # 3, 4
