"""BERT (encoder-only) results for BENCHMARKS.md, "BERT (encoder-only)".

    python bench/bench_bert.py quality --mlm out/bert-mini/best.npz --gpt out/gpt-mini/best.npz \
        --nsp out/bert-nsp/best.npz --nsp-scratch out/bert-nsp-scratch/best.npz

The training step against transformers is the bench command's (one driver for every family):
``OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python -m tinygrad_lm bench --preset bert-mini --rounds 6 --steps 60``.

quality: on the validation split (the last 10% of tiny Shakespeare), over --batches fixed batches:
the masked-LM checkpoint's masked-token loss and accuracy; a unigram baseline on the same masked
positions (the training split's character frequencies: its cross-entropy, and the accuracy of
always guessing the most frequent character); a same-size causal GPT's next-token loss and
accuracy (every position of its val blocks); and next-sentence accuracy of the fine-tuned and the
from-scratch classifiers against chance (50%).

Every part prints the machine's load (`uptime`) first.
"""
import argparse
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import numpy as np  # noqa: E402

from tinygrad_lm.training import checkpoint
from tinygrad_lm.data.text import load_split  # noqa: E402
from tinygrad_lm.tensor import no_grad  # noqa: E402



def uptime():
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


# ---------------------------------------------------------------------------- quality
@no_grad()
def _scores(model, source, n):
    """Mean loss, accuracy and every batch over n batches of `source` (model in eval mode)."""
    model.eval()
    losses, right, count, batches = [], 0, 0, []
    for _ in range(n):
        batch = source.next()
        logits, loss = model(*batch)
        losses.append(loss.item())
        r, c = source.accuracy(batch, logits)
        right, count = right + r, count + c
        batches.append(batch)
    return float(np.mean(losses)), right / count, batches


def quality(args):
    print(uptime())
    model, _, ckpt = checkpoint.load_model(args.mlm)
    data_dir = ckpt["meta"]["dataset"]
    train_tokens, val = load_split(data_dir, "train"), load_split(data_dir, "val")
    config, B = model.config, 32
    print(f"data {data_dir}: val {len(val):,} tokens; {args.batches} batches of {B} per figure; "
          f"masked LM {args.mlm} (step {ckpt['meta']['step']})")
    loss, acc, batches = _scores(model, config.batch_source()(val, config.block_size, B, seed=args.seed), args.batches)
    print(f"masked LM  (bert-mini) : masked-token loss {loss:.4f} | accuracy {acc:.4f}")
    counts = np.bincount(np.asarray(train_tokens), minlength=config.pad_token_id)[:config.pad_token_id] + 1
    logp = np.log(counts / counts.sum())
    targets = np.concatenate([b[3][b[3] != -100] for b in batches])
    print(f"unigram (train chars)  : masked-token loss {-logp[targets].mean():.4f} | accuracy "
          f"{(targets == counts.argmax()).mean():.4f}  ({len(targets):,} masked positions)")
    if args.gpt:
        gpt, _, gckpt = checkpoint.load_model(args.gpt)
        gpt.eval()
        T = gpt.config.block_size
        rng = np.random.default_rng(args.seed)
        losses, right, count = [], 0, 0
        with no_grad():
            for _ in range(args.batches):
                starts = rng.integers(0, len(val) - T - 1, B)
                window = np.asarray(val[starts[:, None] + np.arange(T + 1)], dtype=np.int64)
                logits, l = gpt(window[:, :-1], window[:, 1:])
                losses.append(l.item())
                right += int((logits.numpy().argmax(-1) == window[:, 1:]).sum())
                count += window[:, 1:].size
        print(f"causal GPT (same size) : next-token loss {np.mean(losses):.4f} | accuracy {right / count:.4f}  "
              f"({args.gpt}, step {gckpt['meta']['step']}, {gpt.num_parameters():,} parameters against "
              f"bert-mini's {model.num_parameters():,})")
    for name, path in (("fine-tuned from MLM", args.nsp), ("from scratch", args.nsp_scratch)):
        if path:
            clf, _, c = checkpoint.load_model(path)
            source = clf.config.batch_source()(val, clf.config.block_size, B, seed=args.seed)
            loss, acc, _ = _scores(clf, source, args.batches)
            print(f"next sentence, {name:19s}: loss {loss:.4f} | accuracy {acc:.4f} (chance 0.5; {path}, "
                  f"step {c['meta']['step']})")
    print(uptime())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="part", required=True)
    p = sub.add_parser("quality")
    p.add_argument("--mlm", required=True)
    p.add_argument("--gpt")
    p.add_argument("--nsp")
    p.add_argument("--nsp-scratch")
    p.add_argument("--batches", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    quality(args)


if __name__ == "__main__":
    main()
