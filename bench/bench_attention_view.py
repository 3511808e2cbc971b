"""The interactive attention view of a GPT-2-small-shaped model (12 layers x 12 heads) on a
20-token prompt: the page's size, and how long a headless Chromium takes to draw it (goal: under
1 MB, within 2 seconds).

    python bench/bench_attention_view.py [--rounds 5]

The weights are GPT-2's when $TINYGRAD_LM_DATA/gpt2 holds model.safetensors, else a randomly
initialised GPT-2 small (the page's size and drawing time depend on the shape, not the values).
"Render" is the page's own clock: from the start of navigation to the view built and laid out
(``data-render-ms``, set by the page's script), for the head view with one layer's 12 heads drawn
and for the model view's 144 pictures. "Browser run" is the whole Chromium process
(start, load, draw, dump the DOM, quit), an upper bound.
"""
import argparse
import os
import pathlib
import re
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.browser import CHROMIUM, dump_dom  # noqa: E402
from tinygrad_lm.viz.attention_view import attention_view  # noqa: E402
from tinygrad_lm.data.text import make_tokenizer  # noqa: E402
from tinygrad_lm.models import GPT, GPTConfig  # noqa: E402

PROMPT = "The man ate the sandwich because he was hungry, so his friend made him another one with cheese."  # 20 tokens


class Synthetic:
    """Twenty made-up tokens when GPT-2's tokenizer files are not at hand."""
    vocab_size = 50257

    def encode(self, text):
        return list(range(100, 120))

    def decode(self, ids):
        return "".join(f" w{i}" for i in ids)


def gpt2_small():
    data = os.environ.get("TINYGRAD_LM_DATA")
    folder = pathlib.Path(data) / "gpt2" if data else None
    if folder is not None and (folder / "model.safetensors").exists():
        return GPT.from_pretrained(folder), "GPT-2 small (real weights)"
    return GPT(GPTConfig.gpt2()), "GPT-2 small shape, random weights"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    model, what = gpt2_small()
    try:
        tok = make_tokenizer("gpt2", "", os.environ.get("TINYGRAD_LM_DATA"))
    except Exception as e:                            # offline without the files: the shape is what counts
        print(f"note: GPT-2's tokenizer unavailable ({e}); synthetic tokens")
        tok = Synthetic()
    started = time.perf_counter()
    view = attention_view(model, tok, PROMPT)
    build_s = time.perf_counter() - started
    layers, heads, t, _ = view.weights.shape
    with tempfile.TemporaryDirectory() as tmp:
        page = view.save(pathlib.Path(tmp) / "view.html")
        size = page.stat().st_size
        print(f"{what}: {layers} layers x {heads} heads, {t} tokens; forward + page {build_s:.2f} s")
        print(f"page size: {size:,} bytes ({size / 1e6:.3f} MB; goal < 1 MB)")
        if CHROMIUM is None:
            print("no Chromium on this machine: render time not measured")
            return
        version = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True).stdout.strip()
        print(f"browser: {version}, headless, {args.rounds} rounds, medians")
        for name, fragment in (("head view, 12 heads", "layer=5"), ("model view, 144 heads", "view=model")):
            render, run = [], []
            for _ in range(args.rounds):
                started = time.perf_counter()
                dom = dump_dom(page, fragment, budget_ms=None)
                run.append(time.perf_counter() - started)
                ms = re.search(r'data-render-ms="([\d.]+)"', dom)
                if ms is None or 'data-ready="1"' not in dom:
                    raise SystemExit(f"{name}: the page did not finish drawing")
                render.append(float(ms.group(1)) / 1000)
            print(f"{name:24s} render {statistics.median(render):.3f} s (max {max(render):.3f}); "
                  f"browser run {statistics.median(run):.2f} s; goal < 2 s")


if __name__ == "__main__":
    main()
