"""What a masked-language-model BERT is for, as Hugging Face's pipelines do it:

    fill_mask(model, tokenizer, "The capital of France is [MASK].", top_k=5)
        -> [{"score": 0.41, "token": 3000, "token_str": "paris", "sequence": "the capital of france is paris."}, ...]
    contextual_embeddings(model, tokenizer, "the bank of the river")
        -> (tokens ["[CLS]", "the", "bank", ...], last hidden states (T, hidden_size))

fill_mask is transformers' ``pipeline("fill-mask")``: the softmax of the masked-LM logits at each
[MASK], its top_k tokens, and the text with each filled in (special tokens left out, as there).
A text with several [MASK]s gets one such list per mask, each mask predicted with the others still
masked. contextual_embeddings is the ``feature-extraction`` pipeline for one text: the encoder's
output vector of every token, which depends on the whole text (bidirectional attention), so the
same word gets different vectors in different sentences.

Both take a Hugging Face BERT (a folder: config.json, model.safetensors, vocab.txt) or a masked-LM
training checkpoint (.npz, e.g. of the bert-mini preset), whose dataset tokenizer (characters, BPE)
gets BERT's special tokens after its own vocabulary through SpecialTokensTokenizer.
"""
import numpy as np

from ..errors import ConfigError
from ..models.bert import BertForMaskedLM
from ..nn import eval_mode
from ..tensor import no_grad

SPECIAL_NAMES = {"pad_token_id": "[PAD]", "cls_token_id": "[CLS]", "sep_token_id": "[SEP]", "mask_token_id": "[MASK]"}


class SpecialTokensTokenizer:
    """A training checkpoint's tokenizer with the BERT special ids its config appends after the
    vocabulary ([PAD] [CLS] [SEP] [MASK]): "[MASK]" written in a text becomes the mask id, and a
    text is encoded as [CLS] text [SEP], as a WordPieceTokenizer does."""

    mask_token = "[MASK]"

    def __init__(self, tokenizer, config):
        self.tokenizer = tokenizer
        self.ids = {name: getattr(config, name) for name in SPECIAL_NAMES}
        self.names = {i: SPECIAL_NAMES[name] for name, i in self.ids.items()}
        self.mask_token_id = self.ids["mask_token_id"]

    def __call__(self, text):
        pieces = text.split(self.mask_token)
        ids = [self.ids["cls_token_id"]]
        for i, piece in enumerate(pieces):
            ids += list(self.tokenizer.encode(piece)) if piece else []
            if i < len(pieces) - 1:
                ids.append(self.mask_token_id)
        return {"input_ids": ids + [self.ids["sep_token_id"]]}

    def convert_ids_to_tokens(self, ids):
        return [self.names.get(i) or self.tokenizer.decode([i]) for i in ids]

    def decode(self, ids, skip_special_tokens=False):
        out, run = [], []
        for i in list(ids) + [None]:
            if i is not None and i not in self.names:
                run.append(i)
                continue
            out.append(self.tokenizer.decode(run) if run else "")
            run = []
            if i is not None and not skip_special_tokens:
                out.append(self.names[i])
        return "".join(out)


def _encode(model, tokenizer, text):
    """[CLS] text [SEP] as ids (1, T), checked against the model's position table."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigError("the text is empty; give a sentence")
    ids = tokenizer(text)["input_ids"]
    limit = model.config.max_position_embeddings
    if len(ids) > limit:
        raise ConfigError(f"the text is {len(ids)} tokens long ([CLS] and [SEP] included), more than this "
                          f"model's {limit} positions (max_position_embeddings); shorten it")
    return np.array([ids], dtype=np.int64)


def _forward(model, ids):
    """The model's output in eval mode (dropout off) without a graph; the mode is restored after."""
    with eval_mode(model):
        with no_grad():     # BertForMaskedLM's own forward: the training loop's subclass returns a tuple
            return BertForMaskedLM.forward(model, ids) if isinstance(model, BertForMaskedLM) else model(ids)


def fill_mask(model, tokenizer, text, top_k=5):
    """The top_k fillers of the [MASK] in `text`: a list of {"score", "token", "token_str",
    "sequence"} dicts, best first, as transformers' fill-mask pipeline (a list of such lists when
    the text holds several [MASK]s). `model` is a BertForMaskedLM (or any model whose output has
    .logits (1, T, vocab)); `tokenizer` a WordPieceTokenizer."""
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
        raise ConfigError(f"top_k must be an integer >= 1, got {top_k!r}")
    mask_id = tokenizer.mask_token_id            # a vocabulary without [MASK]: EncodeError
    ids = _encode(model, tokenizer, text)
    positions = np.flatnonzero(ids[0] == mask_id)
    if positions.size == 0:
        raise ConfigError(f"the text has no {tokenizer.mask_token} token: write one where a word should be "
                          f"predicted, e.g. \"The capital of France is {tokenizer.mask_token}.\"")
    logits = _forward(model, ids).logits.numpy()[0, positions].astype(np.float64)     # (masks, vocab)
    logits -= logits.max(axis=-1, keepdims=True)
    probs = np.exp(logits)
    probs /= probs.sum(axis=-1, keepdims=True)
    k = min(int(top_k), probs.shape[-1])
    results = []
    for row, position in zip(probs, positions):
        best = np.argsort(-row, kind="stable")[:k]
        answers = []
        for token in best:
            filled = ids[0].copy()
            filled[position] = token
            answers.append({"score": float(row[token]), "token": int(token),
                            "token_str": tokenizer.decode([int(token)]),
                            "sequence": tokenizer.decode(filled.tolist(), skip_special_tokens=True)})
        results.append(answers)
    return results[0] if len(results) == 1 else results


def contextual_embeddings(model, tokenizer, text):
    """(tokens, vectors): the tokens of [CLS] text [SEP] and the encoder's last hidden state of each,
    a float array (T, hidden_size). `model` is a BertModel or a model holding one (.bert), such as
    BertForMaskedLM."""
    ids = _encode(model, tokenizer, text)
    encoder = getattr(model, "bert", model)
    vectors = _forward(encoder, ids).last_hidden_state.numpy()[0]
    return tokenizer.convert_ids_to_tokens(ids[0].tolist()), vectors
