"""The `baby` recipe trained the way nanoGPT's train.py trains it, in plain PyTorch and independent
of tinygrad_lm (its own weights from torch's generator, batches from torch.randint, exact GELU,
2000 + 1 updates, the loop's val estimate from 20 fresh random batches), to show what the recipe
itself reaches across seeds. Prints the loop's last estimate, the loss over the whole validation
split and a 500-batch estimate.

    python bench/nanogpt_protocol_torch.py --seed 0 --data-dir ../shared/data
"""
import argparse
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn as nn
from torch.nn import functional as F

V, T, B, L, H, C = None, 64, 12, 4, 4, 128        # vocab (from the text), block, batch, layers, heads, width
MAX_ITERS, WARMUP, LR, MIN_LR, EVAL_INTERVAL = 2000, 100, 1e-3, 1e-4, 250


class LayerNormNoBias(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return F.layer_norm(x, self.weight.shape, self.weight, None, 1e-5)


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.c_attn, self.c_proj = nn.Linear(C, 3 * C, bias=False), nn.Linear(C, C, bias=False)

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = (z.view(b, t, H, c // H).transpose(1, 2) for z in self.c_attn(x).split(C, dim=2))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(y.transpose(1, 2).contiguous().view(b, t, c))


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.c_fc, self.gelu, self.c_proj = nn.Linear(C, 4 * C, bias=False), nn.GELU(), nn.Linear(4 * C, C, bias=False)

    def forward(self, x):
        return self.c_proj(self.gelu(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln_1, self.attn, self.ln_2, self.mlp = LayerNormNoBias(C), Attention(), LayerNormNoBias(C), MLP()

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class TinyGPT(nn.Module):
    def __init__(self):
        super().__init__()
        self.transformer = nn.ModuleDict(dict(wte=nn.Embedding(V, C), wpe=nn.Embedding(T, C),
                                              h=nn.ModuleList(Block() for _ in range(L)), ln_f=LayerNormNoBias(C)))
        self.lm_head = nn.Linear(C, V, bias=False)
        self.transformer.wte.weight = self.lm_head.weight             # tied, as GPT-2
        self.apply(self._init_weights)                                # GPT-2 init, module by module
        for name, p in self.named_parameters():                       # then the residual projections
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * L))

    @staticmethod
    def _init_weights(module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, 0.0, 0.02)

    def forward(self, idx, targets):
        x = self.transformer.wte(idx) + self.transformer.wpe(torch.arange(idx.shape[1]))
        for block in self.transformer.h:
            x = block(x)
        logits = self.lm_head(self.transformer.ln_f(x))
        return F.cross_entropy(logits.view(-1, V), targets.reshape(-1))


def lr_at(it):
    if it < WARMUP:
        return LR * (it + 1) / (WARMUP + 1)
    ratio = min((it - WARMUP) / (MAX_ITERS - WARMUP), 1.0)
    return MIN_LR + 0.5 * (1 + math.cos(math.pi * ratio)) * (LR - MIN_LR)


def main():
    global V
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=0, help="torch.manual_seed(1337 + seed)")
    ap.add_argument("--data-dir", default=os.environ.get("TINYGRAD_LM_DATA", "data"))
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with open(os.path.join(args.data_dir, "tinyshakespeare", "input.txt"), encoding="utf-8") as f:
        text = f.read()
    chars = sorted(set(text))
    V = len(chars)
    stoi = {c: i for i, c in enumerate(chars)}
    ids = np.array([stoi[c] for c in text], dtype=np.int64)
    split = {"train": ids[:int(len(ids) * 0.9)], "val": ids[int(len(ids) * 0.9):]}

    def get_batch(name):
        data = split[name]
        ix = torch.randint(len(data) - T, (B,)).numpy()
        windows = data[ix[:, None] + np.arange(T + 1)]
        return torch.from_numpy(windows[:, :-1]), torch.from_numpy(windows[:, 1:])

    torch.manual_seed(1337 + args.seed)
    model = TinyGPT()
    params = list(model.parameters())                                   # the tied weight once
    opt = torch.optim.AdamW([{"params": [p for p in params if p.dim() >= 2], "weight_decay": 0.1},
                             {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}],
                            lr=LR, betas=(0.9, 0.99))

    @torch.no_grad()
    def estimate(n_batches):                     # both splits, as nanoGPT's estimate_loss
        model.eval()
        out = {name: float(np.mean([model(*get_batch(name)).item() for _ in range(n_batches)]))
               for name in ("train", "val")}
        model.train()
        return out

    t0 = time.time()
    x, y = get_batch("train")
    for it in range(MAX_ITERS + 1):                                      # nanoGPT stops after iteration max_iters
        for group in opt.param_groups:
            group["lr"] = lr_at(it)
        if it % EVAL_INTERVAL == 0:
            losses = estimate(20)
            print(f"step {it}: train {losses['train']:.4f} val {losses['val']:.4f}", flush=True)
        loss = model(x, y)
        x, y = get_batch("train")
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
    val = split["val"]
    n = (len(val) - 1) // T
    xs, ys = torch.from_numpy(val[:n * T].reshape(n, T)), torch.from_numpy(val[1:n * T + 1].reshape(n, T))
    model.eval()
    with torch.no_grad():
        full = sum(model(xs[i:i + 64], ys[i:i + 64]).item() * len(xs[i:i + 64]) for i in range(0, n, 64)) / n
    print(json.dumps({"seed": args.seed, "loop_val_20_batches": round(losses["val"], 4), "full_val": round(full, 4),
                      "val_500_batches": round(estimate(500)["val"], 4), "seconds": round(time.time() - t0)}))


if __name__ == "__main__":
    main()
