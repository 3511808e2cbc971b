"""Named recipes: a model config and a training config that belong together. The command line
(``--preset NAME``), the benchmark and the lessons all read this one registry.

    from tinygrad_lm.presets import PRESETS
    model_config, train_config = PRESETS["atpesc"](vocab_size=65)

A new model family adds its recipe here.
"""
from .models import BigramConfig, GPTConfig
from .config import TrainConfig


def atpesc(vocab_size=65):
    """The tutorial's notebook model and optimizer exactly: batch 16, block 32, width 64, 4 heads,
    4 layers, dropout 0, AdamW with PyTorch's defaults (weight decay 0.01 on every parameter),
    constant lr 1e-3, 5000 steps. Evaluation every 500 steps on 100 batches per split."""
    model = GPTConfig.seed_mini(vocab_size=vocab_size, block_size=32, n_layer=4, n_head=4, n_embd=64, dropout=0.0)
    train = TrainConfig(batch_size=16, max_iters=5000, learning_rate=1e-3, decay_lr=False, weight_decay=0.01,
                        decay_all=True, beta1=0.9, beta2=0.999, grad_clip=0.0, eval_interval=500, eval_iters=100,
                        log_interval=100)
    return model, train


def baby(vocab_size=65):
    """nanoGPT's CPU Shakespeare config: GPT-2 architecture (no biases, as nanoGPT's default),
    4 layers, 4 heads, width 128, block 64, batch 12, lr 1e-3 cosine to 1e-4 over 2000 steps with
    100 warmup, weight decay 0.1 on matrices, betas (0.9, 0.99), clipping 1.0."""
    model = GPTConfig.gpt2(vocab_size=vocab_size, block_size=64, n_layer=4, n_head=4, n_embd=128, dropout=0.0,
                           bias=False)
    train = TrainConfig(batch_size=12, max_iters=2000, learning_rate=1e-3, min_lr=1e-4, warmup_iters=100,
                        lr_decay_iters=2000, weight_decay=0.1, beta1=0.9, beta2=0.99, grad_clip=1.0,
                        eval_interval=250, eval_iters=20, log_interval=50)
    return model, train


def gpu(vocab_size=65):
    """nanoGPT's GPU Shakespeare config: 6 layers, 6 heads, width 384, block 256, batch 64,
    lr 1e-3 cosine to 1e-4 over 5000 steps, dropout 0.2."""
    model = GPTConfig.gpt2(vocab_size=vocab_size, block_size=256, n_layer=6, n_head=6, n_embd=384, dropout=0.2,
                           bias=False)
    train = TrainConfig(batch_size=64, max_iters=5000, learning_rate=1e-3, min_lr=1e-4, warmup_iters=100,
                        lr_decay_iters=5000, weight_decay=0.1, beta1=0.9, beta2=0.99, grad_clip=1.0,
                        eval_interval=250, eval_iters=200, log_interval=10)
    return model, train


def bigram(vocab_size=65):
    """A bigram table (models/bigram.py): learns which character follows which, in seconds."""
    return BigramConfig(vocab_size=vocab_size, block_size=8), TrainConfig(
        batch_size=32, max_iters=3000, learning_rate=1e-2, decay_lr=False, weight_decay=0.0, grad_clip=0.0,
        eval_interval=500, eval_iters=20, log_interval=100)


def default(vocab_size=65):
    """What `train` runs without --preset: a small GPT-2 and TrainConfig's defaults."""
    return GPTConfig.gpt2(vocab_size=vocab_size, block_size=64, n_layer=4, n_head=4, n_embd=128), TrainConfig()


PRESETS = {"atpesc": atpesc, "baby": baby, "gpu": gpu, "bigram": bigram, "default": default}
