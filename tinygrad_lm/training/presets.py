"""Named recipes: a model config and a training config that belong together. The command line
(``--preset NAME``), the benchmark and the lessons all read this one registry.

    from tinygrad_lm.training.presets import PRESETS
    model_config, train_config = PRESETS["atpesc"](vocab_size=65)

A new model family adds its recipe here.
"""
import dataclasses

from ..models import LlamaConfig
from ..models import BertClassifierConfig, BertMLMConfig, BigramConfig, GPTConfig, RNNLMConfig, Seq2SeqConfig
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


def char_lstm(vocab_size=65):
    """A character-level LSTM (models/rnnlm.py) the size of the atpesc GPT: embedding 64, one LSTM
    layer of 189 (209,290 parameters against the GPT's 209,729), trained exactly as atpesc (batch
    16, block 32, AdamW lr 1e-3, weight decay 0.01 on all, 5000 steps): the two compare step for step."""
    _, train = atpesc(vocab_size)
    return RNNLMConfig(vocab_size=vocab_size, block_size=32, cell="lstm", n_embd=64, n_hidden=189, n_layer=1), train


def char_gru(vocab_size=65):
    """The same with a GRU layer of 222 (210,463 parameters): three gates instead of four, so wider."""
    _, train = atpesc(vocab_size)
    return RNNLMConfig(vocab_size=vocab_size, block_size=32, cell="gru", n_embd=64, n_hidden=222, n_layer=1), train


def genome_gpt(vocab_size=6):
    """A small GPT for the SARS-CoV-2 corpus (genomes/sarscov2.py; lesson 15): GPT-2's architecture,
    4 layers, 4 heads, width 128, block 256 (a quarter of the spike gene in nucleotides, 60% of it
    in codons), batch 16, lr 2e-3 cosine to 2e-4 over 800 steps: about 0.5 s a step on 2 quiet CPU
    cores, so under 10 minutes (BENCHMARKS.md: 801 s measured with a loaded start).
    The genomes are 99.9% alike, so the model learns the consensus fast and then the rare variants."""
    model = GPTConfig.gpt2(vocab_size=vocab_size, block_size=256, n_layer=4, n_head=4, n_embd=128, dropout=0.0,
                           bias=False)
    train = TrainConfig(batch_size=16, max_iters=800, learning_rate=2e-3, min_lr=2e-4, warmup_iters=50,
                        lr_decay_iters=800, weight_decay=0.1, beta1=0.9, beta2=0.99, grad_clip=1.0,
                        eval_interval=400, eval_iters=10, log_interval=50)
    return model, train


def bert_mini(vocab_size=65):
    """A small BERT (models/bert_tasks.py) pretrained as a masked LM on characters: the dataset's
    vocabulary plus [PAD] [CLS] [SEP] [MASK]; 2 post-LayerNorm layers of width 128, 4 heads, MLP
    512, sequences of 64 ([CLS] 62 characters [SEP]), 15% of them masked; no dropout (short runs).
    AdamW lr 1e-3 (warmup 100, cosine to 1e-4 over 1000 steps), weight decay 0.01, batch 32. Its evaluations log
    the masked-token loss and accuracy."""
    model = BertMLMConfig.with_specials(vocab_size, hidden_size=128, num_hidden_layers=2, num_attention_heads=4,
                                        intermediate_size=512, max_position_embeddings=64,
                                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    train = TrainConfig(batch_size=32, max_iters=1000, learning_rate=1e-3, min_lr=1e-4, warmup_iters=100,
                        lr_decay_iters=1000, weight_decay=0.01, beta1=0.9, beta2=0.999, grad_clip=1.0,
                        eval_interval=250, eval_iters=20, log_interval=50)
    return model, train


def bert_nsp(vocab_size=65):
    """bert-mini's encoder as a next-sentence classifier: [CLS] line [SEP] line [SEP], the second
    line the true next one or a random one (50/50). Start it from a bert-mini checkpoint with
    --init-from OUT/best.npz (the encoder is copied, pooler and classifier fresh), or from scratch.
    AdamW lr 3e-4 (warmup 30, cosine to 3e-5), 300 steps, dropout 0.1 on the classifier."""
    mlm, _ = bert_mini(vocab_size)
    fields = {**mlm.to_dict(), "classifier_dropout": 0.1, "num_labels": 2}
    model = BertClassifierConfig(**fields)
    train = TrainConfig(batch_size=32, max_iters=300, learning_rate=3e-4, min_lr=3e-5, warmup_iters=30,
                        lr_decay_iters=300, weight_decay=0.01, beta1=0.9, beta2=0.999, grad_clip=1.0,
                        eval_interval=100, eval_iters=20, log_interval=50)
    return model, train


def seq2seq_dates(vocab_size=69):
    """An encoder-decoder Transformer (models/seq2seq.py) that reads dates as people write them and
    writes them as ISO 8601 (dates.py; `prepare --corpus dates`): characters, one embedding table
    for both sides, pre-LayerNorm, width 64, 4 heads, 2 + 2 layers, feed-forward 256, no dropout;
    AdamW lr 3e-3 (warmup 50, cosine to 3e-4), batch 64. Its evaluations log the exact-match
    accuracy (a whole date right) on the held-out dates."""
    model = Seq2SeqConfig(src_vocab_size=vocab_size, tgt_vocab_size=vocab_size, block_size=32, d_model=64, nhead=4,
                          num_encoder_layers=2, num_decoder_layers=2, dim_feedforward=256, dropout=0.0,
                          share_embeddings=True)
    train = TrainConfig(batch_size=64, max_iters=1500, learning_rate=3e-3, min_lr=3e-4, warmup_iters=50,
                        lr_decay_iters=1500, weight_decay=0.01, beta1=0.9, beta2=0.98, grad_clip=1.0,
                        eval_interval=250, eval_iters=10, log_interval=50)
    return model, train


def default(vocab_size=65):
    """What `train` runs without --preset: a small GPT-2 and TrainConfig's defaults."""
    return GPTConfig.gpt2(vocab_size=vocab_size, block_size=64, n_layer=4, n_head=4, n_embd=128), TrainConfig()


def llama_mini(vocab_size=65):
    """A small Llama (models/llama.py) the size of the atpesc GPT, trained as atpesc is: width 64,
    4 layers, 4 query heads sharing 2 key/value heads, SwiGLU 172 wide (about 8/3 of the width, as
    Llama's ratio), rotary positions, RMSNorm, context 32, untied head."""
    model = LlamaConfig(vocab_size=vocab_size, hidden_size=64, intermediate_size=172, num_hidden_layers=4,
                        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=32, rms_norm_eps=1e-5)
    _, train = atpesc(vocab_size)
    return model, train


def smollm2_sft(vocab_size=49152):
    """Instruction tuning of SmolLM2-135M-Instruct with LoRA (start it with --init-from smollm2
    and a chat --dataset; the model is the file's, this shape is SmolLM2's for reference): adapters
    of rank 8 (alpha 16) on every Linear but the head, AdamW lr 1e-3 (warmup 10, cosine to 1e-4
    over 150 steps), no weight decay, batch 8 conversations, clipping 1.0. Evaluation every 50
    steps on 4 batches per split, with the exact match of the answers (ChatBatches.accuracy)."""
    model = LlamaConfig(vocab_size=vocab_size, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                        num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=8192,
                        rope_theta=100000.0, rms_norm_eps=1e-5, tie_word_embeddings=True)
    train = TrainConfig(batch_size=8, max_iters=150, learning_rate=1e-3, min_lr=1e-4, warmup_iters=10,
                        lr_decay_iters=150, weight_decay=0.0, beta1=0.9, beta2=0.999, grad_clip=1.0,
                        eval_interval=50, eval_iters=4, log_interval=10, lora_r=8, lora_alpha=16.0,
                        lora_target_modules="all-linear")
    return model, train


def smollm2_dpo(vocab_size=49152):
    """Preference tuning of SmolLM2-135M-Instruct with LoRA (--init-from smollm2 and a preference
    --dataset, e.g. prepare --corpus dates-dpo): smollm2-sft's adapters, DPO with beta 0.1 plus the
    chosen answers' likelihood (rpo_alpha 1.0: DPO alone collapsed on the dates pairs,
    BENCHMARKS.md), AdamW lr 5e-4 (warmup 10, cosine to 5e-5 over 60 steps), batch 4 pairs (8 rows),
    clipping 1.0; evaluation every 20 steps on 4 batches per split, with the reward accuracy."""
    model, train = smollm2_sft(vocab_size)
    train = dataclasses.replace(train, batch_size=4, max_iters=60, learning_rate=5e-4, min_lr=5e-5,
                                lr_decay_iters=60, eval_interval=20, dpo_beta=0.1, rpo_alpha=1.0)
    return model, train


PRESETS = {"atpesc": atpesc, "llama-mini": llama_mini, "baby": baby, "gpu": gpu, "bigram": bigram, "char-lstm": char_lstm,
           "char-gru": char_gru, "bert-mini": bert_mini, "bert-nsp": bert_nsp,
           "genome-gpt": genome_gpt, "seq2seq-dates": seq2seq_dates, "smollm2-sft": smollm2_sft,
           "smollm2-dpo": smollm2_dpo, "default": default}
