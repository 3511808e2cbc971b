"""The interactive attention view: the page holds the weights the model computed (the same numbers
as the command's .npy), refuses bad input with a clear error, stays self-contained and small, shows
itself in a real Jupyter kernel, and works in a real headless browser: heads drawn, a selected
token keeps only its lines, the model view's grid, keys and clicks, a picture that is not blank."""
import json
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

from tinygrad_lm.training import checkpoint
from tinygrad_lm.viz.attention_view import BIDIRECTIONAL, CAUSAL, CROSS, SCALE, AttentionView, attention_view
from tinygrad_lm.cli import main
from tinygrad_lm.errors import ConfigError
from tinygrad_lm.models import GPT, GPTConfig
from tinygrad_lm.tokenizers import CharTokenizer

from .browser import Elements, dump_dom, needs_chromium, screenshot

TEXT = "the man ate the sandwich because he was hungry"


def softmax_weights(layers, heads, t_query, t_key, causal, seed=0):
    """Rows that sum to one, as attention computes them (causal: nothing above the diagonal)."""
    scores = np.random.default_rng(seed).normal(size=(layers, heads, t_query, t_key)) * 2
    if causal:
        scores = np.where(np.triu(np.ones((t_query, t_key), bool), 1), -np.inf, scores)
    w = np.exp(scores - scores.max(-1, keepdims=True))
    return w / w.sum(-1, keepdims=True)


def page_data(text):
    """The JSON a page carries, decoded."""
    payload = re.search(r'<script type="application/json" class="tlv-data">(.*?)</script>', text, re.S).group(1)
    return json.loads(payload)


def page_weights(text, section=0):
    return np.array(page_data(text)["sections"][section]["weights"], dtype=np.float64) / SCALE


@pytest.fixture(scope="module")
def small_gpt():
    tok = CharTokenizer.from_text(TEXT + ".,!?")
    model = GPT(GPTConfig.seed_mini(vocab_size=tok.vocab_size, block_size=48, n_layer=3, n_head=4, n_embd=32))
    return model, tok


@pytest.fixture(scope="module")
def gpt_checkpoint(tmp_path_factory, small_gpt):
    model, tok = small_gpt
    path = tmp_path_factory.mktemp("view") / "gpt.npz"
    checkpoint.save(path, model, meta={"model_family": "gpt", "model_config": model.config.to_dict(),
                                       "tokenizer": {"type": "char", **tok.to_dict()}})
    return path


# ---------------------------------------------------------------------- the page's data
def test_the_command_writes_a_page_with_the_numbers_of_its_npy(tmp_path, gpt_checkpoint, small_gpt, capsys):
    main(["attention", "--model", str(gpt_checkpoint), "--prompt", "the man ate", "--out", str(tmp_path / "a.png"),
          "--html", str(tmp_path / "view.html")])
    assert "interactive view:" in capsys.readouterr().out
    assert (tmp_path / "a.png").stat().st_size > 0                   # the static figure stays
    saved = np.load(tmp_path / "a.npy")
    text = (tmp_path / "view.html").read_text(encoding="utf-8")
    shown = page_weights(text)
    assert saved.shape == shown.shape[:2] + (11, 11) == (3, 4, 11, 11)
    np.testing.assert_allclose(shown.reshape(saved.shape), saved, atol=0.5 / SCALE + 1e-7)
    model, tok = small_gpt                                           # and both are what the model computes
    direct = model.attention_maps(np.array([tok.encode("the man ate")]))[:, 0]
    np.testing.assert_allclose(saved, direct, rtol=1e-5, atol=1e-6)
    assert page_data(text)["sections"][0]["query_tokens"] == list("the man ate")


def test_attention_view_of_a_gpt_keeps_the_models_weights_and_tokens(small_gpt):
    model, tok = small_gpt
    view = attention_view(model, tok, "he ate")
    ids = tok.encode("he ate")
    np.testing.assert_array_equal(view.weights, model.attention_maps(np.array([ids]))[:, 0])
    section = view.sections[0]
    assert section["kind"] == CAUSAL and section["query_tokens"] == section["key_tokens"] == list("he ate")
    assert np.all(np.triu(page_weights(view.to_html())[0, 0].reshape(6, 6), 1) == 0)   # causal: no future


def test_a_model_trained_with_dropout_shows_its_weights_without_dropout():
    tok = CharTokenizer.from_text(TEXT)
    model = GPT(GPTConfig.seed_mini(vocab_size=tok.vocab_size, block_size=16, n_layer=2, n_head=2, n_embd=16,
                                    dropout=0.5))
    assert model.training
    view = attention_view(model, tok, "the man")
    assert model.training                                          # its mode is left as it was
    np.testing.assert_allclose(view.weights.sum(-1), 1, rtol=1e-5)
    np.testing.assert_array_equal(view.weights, attention_view(model, tok, "the man").weights)   # no randomness


def test_cross_attention_keeps_two_token_lists_and_sections_join():
    cross = AttentionView(softmax_weights(2, 3, 4, 6, causal=False), ["<s>", "le", "chat", "</s>"],
                          ["the", " cat", " sat", " on", " it", "."], kind=CROSS)
    encoder = AttentionView(softmax_weights(2, 3, 6, 6, causal=False, seed=1),
                            ["the", " cat", " sat", " on", " it", "."], kind=BIDIRECTIONAL, name="encoder")
    data = page_data(AttentionView.join(encoder, cross).to_html())
    assert [s["kind"] for s in data["sections"]] == [BIDIRECTIONAL, CROSS]
    assert data["sections"][1]["query_tokens"] == ["<s>", "le", "chat", "</s>"]
    assert data["sections"][1]["key_tokens"][1] == " cat" and data["sections"][1]["heads"] == [3, 3]
    assert np.array(data["sections"][1]["weights"]).shape == (2, 3, 24)


@pytest.mark.parametrize("args, message", [
    ((np.ones((1, 1, 2, 3)) / 3, ["a", "b", "c"]), r"expected \(heads, 3, 3\)"),
    ((np.ones((1, 1, 2, 2)) / 2, []), "at least one query token"),
    ((np.full((1, 1, 2, 2), np.nan), ["a", "b"]), "finite and in"),
    ((np.full((1, 1, 2, 2), 1.5), ["a", "b"]), r"in \[0, 1\]"),
    ((np.zeros((0, 1, 2, 2)), ["a", "b"]), "at least one layer"),
    (([[["x"]]], ["a"]), "arrays of numbers"),
])
def test_bad_weights_are_a_clear_error(args, message):
    with pytest.raises(ConfigError, match=message):
        AttentionView(*args)
    with pytest.raises(ConfigError, match="kind 'sideways'"):
        AttentionView(np.ones((1, 1, 1, 1)), ["a"], kind="sideways")


def test_too_many_weights_for_a_page_are_refused(monkeypatch):
    import tinygrad_lm.viz.attention_view as module
    monkeypatch.setattr(module, "MAX_WEIGHTS", 100)
    view = AttentionView(np.ones((2, 2, 6, 6)) / 6, list("abcdef"))
    assert view.weights.shape == (2, 2, 6, 6)                  # the arrays stay usable; the page is refused
    for make_page in (view.to_html, view._repr_html_):
        with pytest.raises(ConfigError, match="144 attention weights are too many for one page"):
            make_page()


def test_bad_prompts_are_clear_errors_through_the_command(tmp_path, gpt_checkpoint):
    base = ["attention", "--model", str(gpt_checkpoint), "--out", str(tmp_path / "a.png"), "--html"]
    cases = [(base + [str(tmp_path / "v.html"), "--prompt", ""], "--prompt is empty"),
             (base + [str(tmp_path / "v.html"), "--prompt", "the man " * 7],
              "the prompt is 56 tokens long, more than this model's context of 48"),
             (base + ["", "--prompt", "the"], "--html '' names nothing"),
             (base + [str(tmp_path), "--prompt", "the"], "--html .* is a folder"),
             (base + [str(tmp_path / "no" / "such" / "v.html"), "--prompt", "the"], "--html .*cannot write there")]
    for argv, message in cases:
        with pytest.raises(SystemExit, match="error: " + message):
            main(argv)
    assert not (tmp_path / "v.html").exists()


def test_a_prompt_too_long_is_one_error_line_from_the_command(tmp_path, gpt_checkpoint):
    root = pathlib.Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-m", "tinygrad_lm", "attention", "--model", str(gpt_checkpoint),
                          "--prompt", "the man " * 7, "--html", "view.html"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(root)})
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert out.returncode == 1 and "Traceback" not in out.stderr and len(errors) == 1, out.stderr
    assert "56 tokens long" in errors[0] and "shorten it" in errors[0]
    assert not list(tmp_path.iterdir())                            # no PNG, no .npy, no page: nothing half-made


def test_the_page_is_self_contained_and_escapes_its_tokens():
    tokens = ["</script><script>alert(1)</script>", "a & b", "\n", " ", "é"]
    text = AttentionView(softmax_weights(1, 2, 5, 5, causal=True), tokens).to_html()
    assert text.count("</script>") == 2                        # the data's and the code's, nothing from a token
    assert page_data(text)["sections"][0]["query_tokens"] == tokens
    without_namespace = text.replace("http://www.w3.org/2000/svg", "")
    for outside in ("http:", "https:", "//cdn", "<link", " src=", "@import", "url(", "@font-face"):
        assert outside not in without_namespace, outside


def test_gpt2_small_on_20_tokens_is_a_page_under_1_mb():
    """The shape the issue names (12 layers x 12 heads, 20 tokens), with weights of every size."""
    text = AttentionView(softmax_weights(12, 12, 20, 20, causal=True), [f" w{i}" for i in range(20)]).to_html()
    assert len(text.encode("utf-8")) < 1_000_000


def test_repr_html_in_a_real_kernel_shows_the_view():
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    source = ("import numpy as np\nfrom tinygrad_lm.viz.attention_view import AttentionView\n"
              "w = np.tril(np.ones((3, 3))); w /= w.sum(-1, keepdims=True)\n"
              "AttentionView(np.stack([np.stack([w, w])]), ['a', 'b', 'c'])")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(pathlib.Path(__file__).parent.parent)}}).execute()
    outputs = nb.cells[0].outputs
    page = next(o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {}))
    assert '<div class="tlv"' in page and "<script>" in page and "function setState" in page
    assert page_data(page)["page"] is False and page_data(page)["sections"][0]["heads"] == [2]


# ---------------------------------------------------------------------- in a real browser
@pytest.fixture(scope="module")
def gpt_page(tmp_path_factory, small_gpt):
    model, tok = small_gpt
    view = attention_view(model, tok, TEXT[:20])
    return view.save(tmp_path_factory.mktemp("page") / "view.html"), view


def drawn(page, fragment=""):
    dom = Elements(dump_dom(page, fragment))
    root = dom.find("div", cls="tlv")[0]
    assert root.get("data-ready") == "1" and "data-error" not in root, root
    return dom, root


def lines_of(dom):
    return [(int(a["data-q"]), int(a["data-k"])) for a in dom.find("line")]


def expected_lines(weights, layer, heads, query=None, key=None):
    """The (query, key) pairs with a weight above zero at 3 decimals: the lines the page must draw."""
    shown = np.rint(weights[layer] * SCALE)
    return sorted((q, k) for h in heads for q, k in zip(*np.nonzero(shown[h] > 0))
                  if (query is None or q == query) and (key is None or k == key))


@needs_chromium
def test_the_head_view_draws_the_heads_chosen_and_their_lines(gpt_page):
    page, view = gpt_page
    dom, root = drawn(page, "layer=1&heads=0,2")
    assert (root["data-view"], root["data-layer"], root["data-heads"]) == ("head", "1", "0,2")
    assert [g["data-head"] for g in dom.find("g", cls="tlv-head")] == ["0", "2"]
    assert sorted(lines_of(dom)) == expected_lines(view.weights, 1, [0, 2])
    assert len(dom.find("g", cls="tlv-tok", data_side="q")) == len(dom.find("g", cls="tlv-tok", data_side="k")) == 20
    dom, root = drawn(page)                                            # the default: layer 0, every head
    assert len(dom.find("g", cls="tlv-head")) == 4
    assert sorted(lines_of(dom)) == expected_lines(view.weights, 0, range(4))


@needs_chromium
def test_a_selected_token_keeps_only_its_lines(gpt_page):
    page, view = gpt_page
    dom, root = drawn(page, "layer=2&heads=1,3&token=q7")
    assert root["data-token"] == "q7" and dom.find("g", cls="tlv-active", data_side="q", data_index=7)
    assert sorted(lines_of(dom)) == expected_lines(view.weights, 2, [1, 3], query=7) and len(lines_of(dom)) >= 2
    dom, _ = drawn(page, "layer=0&heads=2&token=k4")                    # a key token: the queries that read it
    assert sorted(lines_of(dom)) == expected_lines(view.weights, 0, [2], key=4)
    assert {q for q, _ in lines_of(dom)} <= set(range(4, 20))          # causal: only later queries see key 4
    opacity = {(int(a["data-q"]), int(a["data-k"])): float(a["stroke-opacity"]) for a in dom.find("line")}
    assert opacity == {(q, 4): np.rint(view.weights[0, 2, q, 4] * SCALE) / SCALE for q, _ in opacity}  # its weight


@needs_chromium
def test_the_model_view_draws_every_layer_and_head(gpt_page):
    page, _ = gpt_page
    dom, root = drawn(page, "view=model&layer=1&heads=3")
    thumbs = dom.find("button", cls="tlv-thumb")
    assert root["data-view"] == "model" and len(thumbs) == 3 * 4 and len(dom.find("canvas")) == 12
    assert {(t["data-layer"], t["data-head"]) for t in thumbs} == {(str(l), str(h)) for l in range(3) for h in range(4)}
    assert [(t["data-layer"], t["data-head"]) for t in dom.find("button", cls="tlv-current")] == [("1", "3")]


@needs_chromium
def test_bad_fragments_leave_a_working_page(gpt_page):
    page, view = gpt_page
    dom, root = drawn(page, "layer=99&heads=1,x,9,1&token=q999&view=sideways")
    assert (root["data-view"], root["data-layer"], root["data-heads"], root["data-token"]) == ("head", "2", "1", "")
    assert sorted(lines_of(dom)) == expected_lines(view.weights, 2, [1])


EVENTS = """<script>
(function () {
  var root = document.querySelector(".tlv"), log = {};
  function state() { return [root.dataset.view, root.dataset.layer, root.dataset.heads, root.dataset.token].join("|"); }
  function lines() { return Array.prototype.map.call(root.querySelectorAll(".tlv-lines line"),
                                                     function (l) { return l.dataset.q + "," + l.dataset.k; }); }
  function key(el, name) { el.dispatchEvent(new KeyboardEvent("keydown", {key: name, bubbles: true})); }
  var q5 = root.querySelector('.tlv-tok[data-side="q"][data-index="5"]');
  q5.dispatchEvent(new MouseEvent("mouseenter"));
  log.hover = [state(), lines()];
  q5.dispatchEvent(new MouseEvent("mouseleave"));
  log.leave = [state(), lines().length];
  key(q5, "Enter");                                   // pinned: leaving does not clear it
  q5.dispatchEvent(new MouseEvent("mouseleave"));
  log.pinned = [state(), lines()];
  key(q5, "Escape");
  log.escape = state();
  root.querySelector('.tlv-headbtn[data-head="1"]').click();          // head 1 off
  log.headOff = state();
  root.querySelector('.tlv-viewbtn[data-view="model"]').click();
  log.model = state();
  root.querySelector('.tlv-thumb[data-layer="2"][data-head="3"]').click();
  log.thumb = [state(), document.activeElement.tagName];
  root.querySelector('.tlv-tok[data-side="q"][data-index="0"]').focus();   // Tab's stop: focus shows q0
  log.focus = state();
  key(document.activeElement, "ArrowDown");                            // keyboard focus moves and shows q1
  log.arrow = [state(), document.activeElement.getAttribute("data-index")];
  var pre = document.createElement("pre"); pre.id = "events"; pre.textContent = JSON.stringify(log);
  document.body.appendChild(pre);
})();
</script>
</body>"""


@needs_chromium
def test_mouse_keys_and_clicks_drive_the_page(gpt_page, tmp_path):
    page, view = gpt_page
    scripted = tmp_path / "events.html"
    scripted.write_text(page.read_text(encoding="utf-8").replace("</body>", EVENTS), encoding="utf-8")
    log = json.loads(Elements(dump_dom(scripted)).text_of["events"])
    every = "0,1,2,3"
    assert log["hover"][0] == f"head|0|{every}|q5"
    hovered = sorted(tuple(map(int, p.split(","))) for p in log["hover"][1])
    assert hovered == expected_lines(view.weights, 0, range(4), query=5)
    assert log["leave"] == [f"head|0|{every}|", len(expected_lines(view.weights, 0, range(4)))]
    assert log["pinned"][0] == f"head|0|{every}|q5" and {p.split(",")[0] for p in log["pinned"][1]} == {"5"}
    assert log["escape"] == f"head|0|{every}|"
    assert log["headOff"] == "head|0|0,2,3|"
    assert log["model"] == "model|0|0,2,3|"
    assert log["thumb"] == ["head|2|3|", "svg"]                        # opened in the head view, focus inside it
    assert log["focus"] == "head|2|3|q0"
    assert log["arrow"] == ["head|2|3|q1", "1"]


@needs_chromium
def test_cross_attention_and_sections_in_the_browser(tmp_path):
    src, out = ["the", " cat", " sat", " on", " it", "."], ["<s>", "le", "chat"]
    cross = softmax_weights(2, 3, 3, 6, causal=False)
    view = AttentionView.join(AttentionView(softmax_weights(1, 2, 6, 6, causal=False), src, kind=BIDIRECTIONAL),
                              AttentionView(cross, out, src, kind=CROSS))
    page = view.save(tmp_path / "cross.html")
    dom, root = drawn(page, "section=1&layer=1&heads=0,2&token=q2")
    assert len(dom.find("g", cls="tlv-tok", data_side="q")) == 3
    assert len(dom.find("g", cls="tlv-tok", data_side="k")) == 6
    assert sorted(lines_of(dom)) == expected_lines(cross, 1, [0, 2], query=2)
    dom, root = drawn(page, "section=1&view=model")
    assert len(dom.find("button", cls="tlv-thumb")) == 6
    dom, root = drawn(page)                                            # the first section: bidirectional
    assert len(dom.find("g", cls="tlv-tok", data_side="q")) == 6 and len(dom.find("g", cls="tlv-head")) == 2


@needs_chromium
def test_the_view_from_a_notebook_output_runs_in_the_browser(tmp_path):
    """_repr_html_ is a fragment: pasted into any page (as Jupyter does), it draws itself."""
    view = AttentionView(softmax_weights(2, 3, 5, 5, causal=True), list("abcde"))
    page = tmp_path / "notebook.html"                    # two outputs of one view, as after a cell ran twice
    page.write_text(f"<!DOCTYPE html><html><body><p>cell output:</p>{view._repr_html_()}{view._repr_html_()}"
                    "</body></html>", encoding="utf-8")
    dom = Elements(dump_dom(page, "layer=1&heads=0"))      # a notebook's fragment is not the view's to read
    roots = dom.find("div", cls="tlv")
    assert len(roots) == 2 and all(r.get("data-ready") == "1" for r in roots)
    assert all(r["data-layer"] == "0" and r["data-heads"] == "0,1,2" for r in roots)
    assert len(dom.find("g", cls="tlv-head")) == 6


@needs_chromium
def test_a_screenshot_is_not_blank(gpt_page, tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib.image
    page, _ = gpt_page
    for fragment in ("layer=1", "view=model"):
        png = matplotlib.image.imread(screenshot(page, tmp_path / "shot.png", fragment, size=(900, 700)))
        rgb = (png[..., :3] * 255).round().astype(int)
        not_white = np.any(rgb < 235, axis=-1)
        colours = np.unique(rgb.reshape(-1, 3) // 16, axis=0)
        assert not_white.mean() > 0.01 and len(colours) > 20, (fragment, not_white.mean(), len(colours))
