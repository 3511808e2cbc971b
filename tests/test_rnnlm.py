"""The recurrent language model family (models/rnnlm.py): it trains, resumes exactly and samples
through the same command line as the GPT; its stateful generation equals re-reading the whole text;
its config knows its parameters without building the model; and it computes what the same model
written with torch.nn computes."""
import dataclasses
import importlib.util
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import tinygrad_lm as tg
from tinygrad_lm import backend
from tinygrad_lm.training import checkpoint
from tinygrad_lm.models import FAMILIES, RNNLM, RNNLMConfig, build, family_of
from tinygrad_lm.training.presets import PRESETS

ROOT = pathlib.Path(__file__).resolve().parent.parent
TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n" * 120
CELLS = ["lstm", "gru", "rnn_tanh", "rnn_relu"]


def run_cli(*args, cwd):
    out = subprocess.run([sys.executable, "-m", "tinygrad_lm", *map(str, args)], cwd=cwd, capture_output=True,
                         text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT),
                                                      "OPENBLAS_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr
    return out


def small(cell="lstm", **kw):
    fields = dict(vocab_size=11, block_size=6, cell=cell, n_embd=5, n_hidden=7, n_layer=2)
    fields.update(kw)
    return RNNLMConfig(**fields)


def test_char_lstm_trains_resumes_exactly_and_samples_through_the_cli(tmp_path):
    (tmp_path / "text.txt").write_text(TEXT, encoding="utf-8")
    run_cli("prepare", "--input", "text.txt", "--dataset", "data", cwd=tmp_path)
    common = ("--preset", "char-lstm", "--dataset", "data", "--n-embd", 16, "--block-size", 8, "--batch-size", 4,
              "--eval-interval", 3, "--eval-iters", 2, "--samples", 0, "--log-interval", 1, "--peak-flops", 1e9)
    whole_log = run_cli("train", *common, "--out-dir", "whole", "--max-iters", 6, cwd=tmp_path).stdout
    run_cli("train", *common, "--out-dir", "halves", "--max-iters", 3, cwd=tmp_path)
    resumed = run_cli("train", "--init-from", "resume", "--out-dir", "halves", "--max-iters", 6, "--samples", 0,
                      cwd=tmp_path)
    assert "resuming from halves/last.npz at step 3" in resumed.stdout
    whole = checkpoint.load(tmp_path / "whole" / "last.npz")
    halves = checkpoint.load(tmp_path / "halves" / "last.npz")
    assert whole["meta"]["model_family"] == halves["meta"]["model_family"] == "rnnlm"
    assert whole["meta"]["model_config"]["cell"] == "lstm" and whole["meta"]["model_config"]["n_embd"] == 16
    assert len(whole["meta"]["history"]) == 6
    assert halves["meta"]["history"] == whole["meta"]["history"]          # loss for loss
    assert whole["meta"]["history"][-1][1] < whole["meta"]["history"][0][1]   # it learns
    assert "rnn.weight_hh_l0" in whole["model"]
    for name, array in whole["model"].items():
        np.testing.assert_array_equal(halves["model"][name], array)
    sample = run_cli("sample", "--out-dir", "halves", "--start", "Speak", "--max-new-tokens", 40, "--seed", 0,
                     cwd=tmp_path)
    text = sample.stdout.split("\n---")[0]
    assert text.startswith("Speak") and len(text) == len("Speak") + 40     # past block_size 8: no crop needed
    assert set(text) <= set(TEXT)
    # bench/bench_rnn.py reads the same log: the evaluations, with the training time before each
    evals = _bench_rnn().parse_log(whole_log)
    assert [e[0] for e in evals] == [0, 3, 6]
    assert [e[3] for e in evals] == [round(e["val"], 4) for e in whole["meta"]["evals"]]
    assert evals[0][1] == 0 and 0 < evals[1][1] < evals[2][1]


def _bench_rnn():
    spec = importlib.util.spec_from_file_location("bench_rnn", ROOT / "bench" / "bench_rnn.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_script_parses_and_runs_every_part():
    assert subprocess.run(["bash", "-n", str(ROOT / "bench" / "rnn_vs_gpt.sh")]).returncode == 0
    text = (ROOT / "bench" / "rnn_vs_gpt.sh").read_text()
    for part in ("curves", "seqlen", "torch", "env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE", "uptime"):
        assert part in text


@pytest.mark.parametrize("cell", CELLS)
def test_config_knows_the_parameters_without_building_the_model(cell):
    for n_layer in (1, 3):
        config = small(cell, n_layer=n_layer)
        model = build(config)
        assert family_of(model) == family_of(config) == "rnnlm" and (FAMILIES["rnnlm"].model, FAMILIES["rnnlm"].config) == (RNNLM, RNNLMConfig)
        shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        assert config.parameter_shapes() == shapes
        assert config.num_parameters_estimate() == model.num_parameters()
        assert RNNLMConfig.from_dict(config.to_dict()) == config


def test_presets_match_the_atpesc_gpt_in_size_and_training():
    gpt, gpt_train = PRESETS["atpesc"](65)
    for name in ("char-lstm", "char-gru"):
        config, train = PRESETS[name](65)
        assert abs(config.num_parameters_estimate() / gpt.num_parameters_estimate() - 1) < 0.01, name
        assert train == gpt_train and config.block_size == gpt.block_size


def test_bad_configs_are_refused_with_every_problem_named():
    with pytest.raises(ValueError, match="cell='transformer'.*must be positive"):
        RNNLMConfig(cell="transformer", n_hidden=0)
    with pytest.raises(ValueError, match=r"dropout=1.0 must be in \[0, 1\)"):
        RNNLMConfig(dropout=1.0)
    model = RNNLM(small())
    with pytest.raises(IndexError, match="token ids, vocab_size=11"):
        model(np.array([[1, 11]]))
    with pytest.raises(ValueError, match="targets of shape"):
        model(np.array([[1, 2]]), np.array([[1, 2, 3]]))


@pytest.mark.parametrize("cell", CELLS)
def test_state_carries_a_text_read_in_pieces(cell, rng, device):
    """Reading a text in two pieces, the second from the first's state, gives the logits of
    reading it whole (the property stateful generation rests on)."""
    tg.manual_seed(0)
    model = RNNLM(small(cell)).to(device)
    idx = rng.integers(0, 11, (3, 9))
    with tg.no_grad():
        whole, state = model.forward_with_state(idx)
        first, mid = model.forward_with_state(idx[:, :4])
        second, end = model.forward_with_state(idx[:, 4:], mid)
    np.testing.assert_allclose(np.concatenate([first.numpy(), second.numpy()], axis=1), whole.numpy(),
                               rtol=1e-5, atol=1e-6)
    for a, b in zip(*(s if isinstance(s, tuple) else (s,) for s in (state, end))):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_stateful_generation_equals_rereading_the_whole_prefix(cell):
    tg.manual_seed(3)
    model = RNNLM(small(cell))
    prompt = np.array([[1, 2, 3], [4, 5, 6]])
    for kwargs in ({"temperature": 0}, {"temperature": 1.0, "seed": 7}, {"top_k": 3, "seed": 1}):
        stateful = model.generate(prompt, 20, **kwargs)        # 23 tokens > block_size 6: no crop
        rereading = model.generate(prompt, 20, use_cache=False, **kwargs)
        np.testing.assert_array_equal(stateful, rereading)
        assert stateful.shape == (2, 23)
        np.testing.assert_array_equal(stateful[:, :3], prompt)
    # the greedy tokens are the argmax of the logits of the whole text read at once
    greedy = model.generate(prompt, 20, temperature=0)
    with tg.no_grad():
        logits, _ = model(greedy[:, :-1])
    np.testing.assert_array_equal(logits.numpy()[:, 2:].argmax(-1), greedy[:, 3:])


@pytest.mark.parametrize("cell", CELLS)
def test_logits_loss_and_gradients_equal_the_torch_nn_model(cell, rng):
    torch = pytest.importorskip("torch")
    from tinygrad_lm.crosscheck.torch_rnnlm import from_ours
    tg.manual_seed(1)
    model = RNNLM(small(cell)).double()
    theirs = from_ours(model)
    idx, targets = rng.integers(0, 11, (4, 6)), rng.integers(0, 11, (4, 6))
    logits, loss = model(idx, targets)
    loss.backward()
    t_logits, t_loss = theirs(torch.tensor(idx), torch.tensor(targets))
    t_loss.backward()
    np.testing.assert_allclose(logits.numpy(), t_logits.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(loss.item(), t_loss.item(), rtol=1e-12)
    t_params = dict(theirs.named_parameters())
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), t_params[name].grad.numpy(), rtol=1e-9, atol=1e-12,
                                   err_msg=name)


def test_training_step_runs_on_every_device(device):
    tg.manual_seed(0)
    model = RNNLM(small("lstm", n_layer=1)).to(device)
    x = np.arange(12).reshape(2, 6) % 11
    _, loss = model(backend.to_device(x, device), backend.to_device((x + 1) % 11, device))
    loss.backward()
    assert np.isfinite(loss.item()) and all(p.grad is not None for p in model.parameters())
    assert model.flops_per_token() == 6 * (model.num_parameters() - 11 * 5)


@pytest.mark.parametrize("cell", CELLS)
def test_fused_field_picks_the_implementation_and_both_agree(cell, rng):
    tg.manual_seed(5)
    fused = RNNLM(small(cell)).double()
    composite = RNNLM(small(cell, fused=False)).double()
    composite.load_state_dict({k: v.numpy() for k, v in fused.state_dict().items()})
    assert fused.rnn.fused and not composite.rnn.fused
    idx, targets = rng.integers(0, 11, (3, 6)), rng.integers(0, 11, (3, 6))
    for model in (fused, composite):
        _, loss = model(idx, targets)
        loss.backward()
    grads = dict(composite.named_parameters())
    for name, p in fused.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), grads[name].grad.numpy(), rtol=1e-10, atol=1e-13, err_msg=name)


def test_bench_times_the_lstm_against_torch_nn_in_separate_processes():
    pytest.importorskip("torch")
    from tinygrad_lm.training.bench import OURS, run_bench
    lines = []
    result = run_bench("char-lstm", steps=2, warmup=1, rounds=1, print_fn=lines.append,
                       model={"block_size": 8, "n_hidden": 16})
    text = "\n".join(lines)
    assert "batch 16 x block 8" in text and "goal <= 1.5, done at <= 2" in text
    small_lstm = dataclasses.replace(PRESETS["char-lstm"]()[0], n_hidden=16, block_size=8)
    assert f"{small_lstm.num_parameters_estimate():,} parameters" in text           # the override is in the report
    assert len(set(result["pids"][OURS] + result["pids"]["PyTorch"] + [os.getpid()])) == 3
    assert result["ratio"] > 0 and not result["torch_loaded_in_ours"]
