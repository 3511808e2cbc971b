"""GPT-2 in the engine: the safetensors reader/writer, loading and exporting Hugging Face GPT-2."""
import json
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_lm as tg
from tinygrad_lm.models.gpt import GPT, GPTConfig
from tinygrad_lm.errors import PretrainedError
from tinygrad_lm.io.safetensors import SafetensorsError, dump_bytes, load_bytes, load_file, save_file


# ------------------------------------------------------------------ safetensors
def test_round_trip_all_dtypes(tmp_path):
    rng = np.random.default_rng(0)
    tensors = {"f64": rng.standard_normal((2, 3)), "f32": rng.standard_normal(4).astype(np.float32),
               "i64": np.arange(6).reshape(3, 2), "u8": np.arange(5, dtype=np.uint8), "b": np.array([True, False]),
               "empty": np.zeros((0, 3), np.float32), "scalar": np.array(2.5, np.float32)}
    path = save_file(tensors, tmp_path / "t.safetensors", metadata={"format": "pt"})
    loaded, meta = load_file(path)
    assert meta == {"format": "pt"}
    for k, v in tensors.items():
        assert loaded[k].dtype == v.dtype and loaded[k].shape == v.shape
        np.testing.assert_array_equal(loaded[k], v)


def test_f16_and_bf16_become_float32():
    values = np.array([1.5, -2.25, 3.0e-3], dtype=np.float32)
    bf16 = (values.view(np.uint32) >> 16).astype("<u2")            # exact for these values' top bits
    header = {"h": {"dtype": "F16", "shape": [3], "data_offsets": [0, 6]},
              "b": {"dtype": "BF16", "shape": [3], "data_offsets": [6, 12]}}
    blob = _blob(header, values.astype(np.float16).tobytes() + bf16.tobytes())
    loaded, _ = load_bytes(blob)
    assert loaded["h"].dtype == np.float32 and loaded["b"].dtype == np.float32
    np.testing.assert_allclose(loaded["h"], values, rtol=1e-3)
    np.testing.assert_allclose(loaded["b"], (bf16.astype(np.uint32) << 16).view(np.float32))


def _blob(header, data, header_size=None):
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text) if header_size is None else header_size) + text + data


GOOD = {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}
MALFORMED = {
    "truncated": (b"\x10\x00\x00", "too short"),
    "header past end": (_blob(GOOD, b"\0" * 8, header_size=10_000), "runs past the end"),
    "not json": (struct.pack("<Q", 5) + b"{nope" + b"\0" * 8, "not valid JSON"),
    "not an object": (_blob([1, 2], b""), "must be a JSON object"),
    "unknown dtype": (_blob({"a": {"dtype": "F8", "shape": [2], "data_offsets": [0, 2]}}, b"\0" * 2), "unknown dtype 'F8'"),
    "shape/size mismatch": (_blob({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8), "needs 12 bytes"),
    "out of range": (_blob({"a": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, b"\0" * 8), "outside the data area"),
    "overlap": (_blob({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                       "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, b"\0" * 8), "overlaps"),
    "hole": (_blob({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, b"\0" * 8), "belong to no tensor"),
    "negative shape": (_blob({"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, b"\0" * 8), "non-negative"),
    "missing field": (_blob({"a": {"dtype": "F32", "shape": [2]}}, b"\0" * 8), "exactly dtype, shape and data_offsets"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_files_give_clear_errors(case, tmp_path):
    blob, message = MALFORMED[case]
    path = tmp_path / "bad.safetensors"
    path.write_bytes(blob)
    with pytest.raises(SafetensorsError, match=message):
        load_file(path)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_never_crash_the_reader(blob):
    try:
        load_bytes(blob)
    except SafetensorsError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 200), st.integers(0, 255))
def test_corrupted_valid_files_never_crash_the_reader(position, value):
    blob = bytearray(dump_bytes({"w": np.arange(6, dtype=np.float32).reshape(2, 3), "i": np.arange(3)}))
    blob[position % len(blob)] = value
    try:
        load_bytes(bytes(blob))
    except SafetensorsError:
        pass


# ------------------------------------------------------------------ Hugging Face GPT-2


@pytest.fixture(scope="module")
def hf_gpt2(tmp_path_factory):
    transformers = pytest.importorskip("transformers", reason="transformers (with torch) is an optional test dependency")
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    config = transformers.GPT2Config(n_layer=2, n_embd=64, n_head=4, n_positions=64, vocab_size=50257)
    model = transformers.GPT2LMHeadModel(config).eval()
    path = tmp_path_factory.mktemp("hf") / "tiny-gpt2"
    model.save_pretrained(path, safe_serialization=True)
    return model, path


def test_load_matches_transformers_logits_and_greedy_continuation(hf_gpt2):
    import torch
    ref, path = hf_gpt2
    ours = GPT.from_pretrained(path)
    assert ours.config.vocab_size == 50257 and ours.config.block_size == 64
    idx = np.random.default_rng(0).integers(0, 50257, (2, 20))
    logits, _ = ours(idx)
    with torch.no_grad():
        expected = ref(torch.tensor(idx)).logits.numpy()
    np.testing.assert_allclose(logits.numpy(), expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())
    prompt = idx[:1, :5]
    ours_ids = ours.generate(prompt, 30, temperature=0)
    with torch.no_grad():
        ref_ids = ref.generate(torch.tensor(prompt), max_new_tokens=30, do_sample=False, pad_token_id=50256).numpy()
    np.testing.assert_array_equal(ours_ids, ref_ids)


def test_export_loads_in_transformers_with_same_logits(tmp_path):
    transformers = pytest.importorskip("transformers", reason="transformers (with torch) is an optional test dependency")
    import torch
    tg.manual_seed(3)
    ours = GPT(GPTConfig.gpt2(vocab_size=50257, block_size=32, n_layer=2, n_head=2, n_embd=32))
    ours.save_pretrained(tmp_path / "export")
    theirs = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "export").eval()
    idx = np.random.default_rng(1).integers(0, 50257, (2, 12))
    with torch.no_grad():
        expected = theirs(torch.tensor(idx)).logits.numpy()
    np.testing.assert_allclose(ours(idx)[0].numpy(), expected, rtol=1e-5, atol=1e-6)
    again = GPT.from_pretrained(tmp_path / "export")
    np.testing.assert_array_equal(again(idx)[0].numpy(), ours(idx)[0].numpy())


def test_missing_directory_explains(tmp_path):
    with pytest.raises(PretrainedError, match="config.json and model.safetensors"):
        GPT.from_pretrained(tmp_path)
    with pytest.raises(PretrainedError, match="only GPT-2-architecture"):
        GPT(GPTConfig.seed_mini(vocab_size=10, block_size=8, n_layer=1, n_head=2, n_embd=8)).save_pretrained(tmp_path)


def test_finetune_from_a_gpt2_directory_and_export_cli(tmp_path, gpt2_dir, monkeypatch):
    """`train --init-from DIR` with the GPT-2 tokenizer, then `export` back to a Hugging Face directory."""
    import subprocess
    import sys

    from tinygrad_lm.data.text import prepare
    from tinygrad_lm.training.loop import TrainConfig, train
    tg.manual_seed(0)
    base = GPT(GPTConfig.gpt2(vocab_size=50257, block_size=32, n_layer=1, n_head=2, n_embd=16))
    base.save_pretrained(tmp_path / "base")
    src = tmp_path / "input.txt"
    src.write_text("ROMEO:\nBut, soft! what light through yonder window breaks?\n" * 30, encoding="utf-8")
    prepare(src, tmp_path / "data", tokenizer="gpt2", data_dir=gpt2_dir.parent)
    cfg = TrainConfig(batch_size=2, max_iters=4, eval_interval=2, eval_iters=1, log_interval=2, warmup_iters=1,
                      lr_decay_iters=4, out_dir=str(tmp_path / "out"))
    result = train(base.config, cfg, tmp_path / "data", init_from=str(tmp_path / "base"), log=lambda *a: None)
    assert result["evals"][-1]["val"] < result["evals"][0]["val"]
    first_val = result["evals"][0]["val"]
    idx = np.array([[464, 3290, 318]])
    ref_logits, _ = base(idx)
    # the run started from the pretrained weights: its first evaluation is the base model's loss
    from tinygrad_lm.training.loop import estimate_loss
    from tinygrad_lm.data.text import load_split
    data = {"train": load_split(tmp_path / "data", "train"), "val": load_split(tmp_path / "data", "val")}
    assert abs(estimate_loss(base, data, 32, 2, 1, cfg.seed)["val"] - first_val) < 1e-5
    out = subprocess.run([sys.executable, "-m", "tinygrad_lm", "export", "--checkpoint", str(tmp_path / "out" / "last.npz"),
                          "--out", str(tmp_path / "exported")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    tuned = GPT.from_pretrained(tmp_path / "exported")
    assert not np.allclose(tuned(idx)[0].numpy(), ref_logits.numpy())
    # resuming the fine-tune needs no --dataset or --tokenizer: the checkpoint knows its GPT-2 data
    from tinygrad_lm.__main__ import main
    from tinygrad_lm.training.checkpoint import read_meta
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    main(["train", "--init-from", "resume", "--out-dir", str(tmp_path / "out"), "--max-iters", "6", "--samples", "0"])
    resumed = read_meta(tmp_path / "out" / "last.npz")
    assert resumed["step"] == 6 and resumed["model_config"]["vocab_size"] == 50257
    assert resumed["dataset"] == str((tmp_path / "data").resolve()) and not (elsewhere / "data").exists()


def test_generate_and_attention_commands(tmp_path, gpt2_dir):
    """The seed's demo through the CLI, on a small random GPT-2 directory."""
    import subprocess
    import sys
    tg.manual_seed(0)
    GPT(GPTConfig.gpt2(vocab_size=50257, block_size=64, n_layer=1, n_head=2, n_embd=16)).save_pretrained(tmp_path / "m")

    def run(*args):
        out = subprocess.run([sys.executable, "-m", "tinygrad_lm", *args, "--data-dir", str(gpt2_dir.parent)],
                             capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        return out.stdout
    prompt = "My dog really wanted to eat icecream because"
    text = run("generate", "--model", str(tmp_path / "m"), "--prompt", prompt, "--max-new-tokens", "20",
               "--num-return-sequences", "5", "--seed", "3", "--top-p", "0.9")
    lines = [ln for ln in text.splitlines() if ln.startswith("[")]
    assert len(lines) == 5 and all(prompt in ln for ln in lines)
    assert text == run("generate", "--model", str(tmp_path / "m"), "--prompt", prompt, "--max-new-tokens", "20",
                       "--num-return-sequences", "5", "--seed", "3", "--top-p", "0.9")      # a seed repeats
    greedy = run("generate", "--model", str(tmp_path / "m"), "--prompt", prompt, "--greedy",
                 "--num-return-sequences", "2", "--max-new-tokens", "10").splitlines()
    assert greedy[0][4:] == greedy[1][4:]                                             # greedy: identical rows
    run("attention", "--model", str(tmp_path / "m"), "--prompt", "The man ate the sandwich", "--out", "att.png")
    assert (tmp_path / "att.png").stat().st_size > 5000
    maps = np.load(tmp_path / "att.npy")
    assert maps.shape[:2] == (1, 2) and np.allclose(maps.sum(-1), 1, atol=1e-4)


def test_download_offline_explains(tmp_path, monkeypatch):
    import urllib.request

    from tinygrad_lm.io.hf import download_gpt2

    def offline(*a, **k):
        raise OSError("network is unreachable")
    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(PretrainedError, match=r"Offline: copy config.json and model.safetensors of gpt2 into"):
        download_gpt2("gpt2", tmp_path / "gpt2")
