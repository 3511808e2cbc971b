"""BPE training and GPT-2 encoding speed (issue: tokenizers).

    python bench/bench_tokenizer.py [--data-dir DIR]

1. Train a byte-level BPE to vocab 1024 with the GPT-2 split on tiny Shakespeare; time the plain
   reference loop (recount every pair after each merge) for a few merges on the same text and
   print the per-merge ratio, plus the check that both give the same first merges.
2. Encode tiny Shakespeare with GPT-2's files; print MB/s for tinygrad_lm and for tiktoken
   (when installed), and their ratio (goal: at least 1/3).
"""
import argparse
import os
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from tinygrad_lm.tokenizers import GPT2_PATTERN, BPETokenizer, gpt2_tokenizer, reference_train_merges  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=os.environ.get("TINYGRAD_LM_DATA", "data"))
    ap.add_argument("--reference-merges", type=int, default=8)
    args = ap.parse_args()
    data = pathlib.Path(args.data_dir)
    text = (data / "tinyshakespeare" / "input.txt").read_text(encoding="utf-8")
    n_bytes = len(text.encode())

    t = time.perf_counter()
    tok = BPETokenizer.train(text, 1024)
    fast = time.perf_counter() - t
    t = time.perf_counter()
    ref = reference_train_merges(text, args.reference_merges)
    slow = (time.perf_counter() - t) / args.reference_merges
    same = ref == tok.merges[: len(ref)]
    print(f"BPE train to vocab 1024 (768 merges, GPT-2 split): {fast:.2f} s  (goal <= 5 s)")
    print(f"reference loop: {slow:.3f} s per merge -> about {slow * 768:.0f} s for 768 merges; "
          f"speed-up x{slow * 768 / fast:.0f}; first {len(ref)} merges identical: {same}")

    gpt2 = gpt2_tokenizer(data / "gpt2")
    t = time.perf_counter()
    ids = gpt2.encode(text)
    ours = n_bytes / (time.perf_counter() - t) / 1e6
    print(f"GPT-2 encode tiny Shakespeare: {len(ids)} tokens, tinygrad_lm {ours:.2f} MB/s (cold cache)")
    try:
        import tiktoken
        import tiktoken.load
    except ImportError:
        print("tiktoken not installed: no reference throughput")
        return
    ranks = tiktoken.load.data_gym_to_mergeable_bpe_ranks(vocab_bpe_file=str(data / "gpt2" / "vocab.bpe"),
                                                          encoder_json_file=str(data / "gpt2" / "encoder.json"))
    enc = tiktoken.Encoding(name="gpt2", pat_str=GPT2_PATTERN, mergeable_ranks=ranks,
                            special_tokens={"<|endoftext|>": 50256})
    enc.encode_ordinary(text[:1000])
    best = 0.0
    for _ in range(3):
        t = time.perf_counter()
        ref_ids = enc.encode_ordinary(text)
        best = max(best, n_bytes / (time.perf_counter() - t) / 1e6)
    print(f"tiktoken {best:.2f} MB/s (best of 3); ratio tinygrad_lm/tiktoken = {ours / best:.2f} "
          f"(goal >= 0.33); identical ids: {ref_ids == ids}")


if __name__ == "__main__":
    main()
