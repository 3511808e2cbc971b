"""Chat data for instruction tuning (SFT): conversations as JSONL, rendered with the model's chat
template, with the loss on the assistant's tokens only.

    {"messages": [{"role": "user", "content": "Write 3rd of March 2021 as an ISO 8601 date"},
                  {"role": "assistant", "content": "2021-03-03"}]}           <- one line (trl's format)

    chats = read_chat_jsonl("chat.jsonl")                  # [[{"role", "content"}, ...], ...], checked
    ids, in_loss = encode_chat(tok, template, chats[0])    # in_loss: the assistant's tokens
    prepare_chat(chats, val_chats, "data/chat", tok, template)
    batches = ChatBatches(load_split("data/chat", "train"), 128, 8, **chat_batch_settings(meta))
    x, y = batches.next()                                  # y is -100 wherever the loss does not look

Which tokens are learned. ChatML writes every message as ``<|im_start|>role\\n content<|im_end|>\\n``.
The labels are the assistant's content and its ``<|im_end|>`` (the model must learn to stop);
everything else, the system and user messages and the ``<|im_start|>assistant\\n`` header, is
context, with label -100 (F.cross_entropy's ignore_index), as trl's assistant-only loss.

How a dataset is stored. As every dataset here, one token stream per split (train.bin, val.bin):
the conversations one after another, each followed by the separator (the tokenizer's
``<|endoftext|>``). The loss mask is not stored: it is found again in the ids, since in ChatML an
answer is exactly what follows the ids of ``<|im_start|>assistant\\n`` up to and including the
next ``<|im_end|>``. That holds because no message may contain a special token's text
(read_chat_jsonl refuses one), and encode_chat checks that the pieces encode as the whole does.
meta.json's "chat" entry holds those ids, so the batch source needs nothing else.

Padding. A batch is ``batch_size`` whole conversations drawn at random, right-padded to the
longest of the batch. A causal model needs no attention mask for right padding: position t attends
to positions <= t, all real, so each row's logits equal its unpadded logits (tests/test_sft.py),
and the padded positions have label -100. The loss is the mean over the batch's answer tokens.
"""
import json
import os
import pathlib

import numpy as np

from ..errors import ConfigError, DataError
from ..tokenizers.chat_template import ROLES, ChatML
from .text import write_dataset

MAX_JSONL_BYTES = 2 ** 30          # the conversations are held in memory: a larger file is refused unread
SEPARATOR = "<|endoftext|>"


def read_chat_jsonl(path, max_bytes=MAX_JSONL_BYTES):
    """The conversations of a JSONL file, one ``{"messages": [{"role", "content"}, ...]}`` per
    line (blank lines skipped). Each is checked: roles of ROLES, text contents, at least one
    assistant message, no special token's text in a content. DataError names the line."""
    return read_jsonl(path, check_chat, "conversation", max_bytes)


def read_jsonl(path, check, what, max_bytes=MAX_JSONL_BYTES):
    """[check(record, "file:line") for each line's JSON record] (blank lines skipped): a JSONL
    dataset of `what`s (a conversation, a preference pair), read in one go, each line checked."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file (a dataset of {what}s is a .jsonl file, one {what} per line)")
    if path.stat().st_size > max_bytes:
        raise DataError(f"{path} holds {path.stat().st_size:,} bytes, more than the {max_bytes:,} read in one go: "
                        "split it")
    records = []
    try:
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if line.strip():
                    records.append(check(_json_line(line, path, number), f"{path}:{number}"))
    except UnicodeDecodeError as e:
        raise DataError(f"{path} is not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror or e}") from None
    if not records:
        raise DataError(f"{path} holds no {what}")
    return records


def hold_out(records, source, what="conversation", fraction=0.1, seed=0):
    """(train, val): `fraction` of `records` (a tenth: every tenth, rounded down; at least one) held out for validation, chosen by a
    fixed seed; DataError when there are fewer than two (`source` names where they came from)."""
    if len(records) < 2:
        raise DataError(f"{source} holds {len(records)} {what}; training and validation need at least 2 "
                        "(or give the held-out ones apart)")
    order = np.random.default_rng(seed).permutation(len(records))
    n_val = max(1, len(records) // round(1 / fraction))
    return [records[i] for i in order[n_val:]], [records[i] for i in order[:n_val]]


def _json_line(line, path, number):
    try:
        return json.loads(line)
    except (ValueError, RecursionError) as e:
        raise DataError(f"{path}:{number}: not a JSON object ({e if isinstance(e, ValueError) else 'nested too deeply'})") from None


def check_chat(record, where="a conversation", special_tokens=("<|im_start|>", "<|im_end|>", SEPARATOR)):
    """The messages of one record ``{"messages": [...]}`` (or of a bare list of messages), checked."""
    messages = record.get("messages") if isinstance(record, dict) else record
    if not isinstance(messages, list) or not messages:
        raise DataError(f"{where}: not a chat: expected {{\"messages\": [{{\"role\": ..., \"content\": ...}}, ...]}}")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            raise DataError(f"{where}: message {i} is not {{\"role\": text, \"content\": text}}: {str(m)[:80]}")
        if m["role"] not in ROLES:
            raise DataError(f"{where}: message {i} has the role {m['role']!r}; the roles are {', '.join(ROLES)}")
        inside = [t for t in special_tokens if t in m["content"]]
        if inside:
            raise DataError(f"{where}: message {i} contains the special token {inside[0]}, which would end or open "
                            "a message: a chat's text may not hold it")
    if not any(m["role"] == "assistant" for m in messages):
        raise DataError(f"{where}: no assistant message, so nothing to learn")
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def encode_chat(tok, template, messages):
    """(ids, in_loss): the conversation as the model reads it (the template's rendering, encoded)
    and, per token, whether it is an answer token: an assistant's content and its end-of-turn."""
    if not isinstance(template, ChatML):
        raise ConfigError(f"encode_chat: a {type(template).__name__} template; the loss mask is written for ChatML")
    pieces = []
    if messages and messages[0]["role"] != "system" and template.default_system is not None:
        pieces.append((f"{template.start}system\n{template.default_system}{template.end}\n", False))
    for m in messages:
        header = f"{template.start}{m['role']}\n"
        if m["role"] == "assistant":
            pieces += [(header, False), (m["content"] + template.end, True), ("\n", False)]
        else:
            pieces.append((header + m["content"] + template.end + "\n", False))
    ids, in_loss = [], []
    for text, learned in pieces:
        piece = tok.encode(text)
        ids += piece
        in_loss += [learned] * len(piece)
    if ids != tok.encode(template.render(messages)):      # BPE never merges across the pieces' edges
        raise DataError("the conversation's pieces encode differently from the whole: a message's text merges "
                        f"with the template around it ({str(messages)[:80]})")
    return ids, in_loss


def write_chat_jsonl(chats, path):
    """Write conversations as JSONL (trl's format, one {"messages": [...]} per line), atomically."""
    write_jsonl(({"messages": messages} for messages in chats), path)


def write_jsonl(records, path):
    """Write one JSON record per line, atomically (a temporary file, then renamed)."""
    path = pathlib.Path(path)
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        with open(temporary, "w", encoding="utf-8") as f:
            for record in records:
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
        os.replace(temporary, path)
    except OSError as e:
        temporary.unlink(missing_ok=True)
        raise DataError(f"could not write {path} ({e.strerror or e})") from None


def chat_batch_settings(meta):
    """The ChatBatches arguments a chat dataset's meta.json holds (its "chat" entry)."""
    chat = meta.get("chat")
    try:
        return {"separator_id": int(chat["separator_id"]), "answer_start": [int(i) for i in chat["answer_start"]],
                "end_of_turn_id": int(chat["end_of_turn_id"])}
    except (TypeError, KeyError, ValueError) as e:
        raise DataError(f"meta.json's 'chat' entry is not what prepare_chat writes ({type(e).__name__}: {e})") from None


def prepare_chat(train_chats, val_chats, out_dir, tok, template, **extra):
    """Write train.bin, val.bin and meta.json for chat data (see the module's docstring). A
    conversation's loss mask is checked to be found again from its ids (answer_mask) as written."""
    separator = tok.token_id(SEPARATOR)
    settings = {"separator_id": separator, "answer_start": tok.encode(f"{template.start}assistant\n"),
                "end_of_turn_id": tok.token_id(template.end)}
    streams, counts = {}, {}
    for split, chats in (("train", train_chats), ("val", val_chats)):
        stream = []
        for messages in chats:
            ids, in_loss = encode_chat(tok, template, messages)
            if answer_mask(ids, settings["answer_start"], settings["end_of_turn_id"]).tolist() != in_loss:
                raise DataError(f"the answers of a conversation cannot be found again from its ids: {str(messages)[:80]}")
            stream += ids + [separator]
        streams[split], counts[split] = stream, len(chats)
    if not counts["train"] or not counts["val"]:
        raise DataError(f"a chat dataset needs conversations in both splits (train {counts['train']}, "
                        f"val {counts['val']})")
    return write_dataset(out_dir, tok, streams["train"], streams["val"], **extra,
                         chat={"template": "chatml", "default_system": template.default_system, **settings,
                               "train_conversations": counts["train"], "val_conversations": counts["val"]})


def answer_mask(ids, answer_start, end_of_turn_id):
    """Per token of one conversation: True on the assistant's answers (after each run of the ids
    `answer_start`, up to and including the next end-of-turn id)."""
    ids, start = np.asarray(ids), list(answer_start)
    mask = np.zeros(len(ids), dtype=bool)
    n, inside = len(start), False
    i = 0
    while i < len(ids):
        if not inside and i + n <= len(ids) and ids[i:i + n].tolist() == start:
            inside, i = True, i + n
            continue
        if inside:
            mask[i] = True
            inside = ids[i] != end_of_turn_id
        i += 1
    return mask


class ChatBatches:
    """The batch source of chat data (the protocol of data.CausalLMBatches: ``next()``,
    ``get_state()``, ``set_state()``): batch_size random conversations, right-padded, as
    ``(x, y)`` with y = -100 but on the answers' tokens. Built as ``cls(tokens, block_size,
    batch_size, seed=...)`` plus the dataset's chat_batch_settings."""

    IGNORE = -100

    def __init__(self, data, block_size, batch_size, seed=0, separator_id=0, answer_start=(), end_of_turn_id=2):
        if batch_size < 1:
            raise ConfigError(f"ChatBatches: batch_size must be >= 1, got {batch_size}")
        tokens = np.asarray(data, dtype=np.int64)
        ends = np.flatnonzero(tokens == separator_id)
        if not len(ends) or ends[-1] != len(tokens) - 1:
            raise DataError("the token stream does not end with the separator: it is not a chat dataset")
        starts = np.concatenate([[0], ends[:-1] + 1])
        lengths = ends - starts                          # the separator is not part of a conversation
        too_long = np.flatnonzero(lengths - 1 > block_size)
        if len(too_long):
            raise DataError(f"{len(too_long)} conversations (the first is number {too_long[0]}, {lengths[too_long[0]]} "
                            f"tokens) are longer than the model's context of {block_size} + 1: shorten them")
        if (lengths < 2).any():
            raise DataError("a conversation of fewer than 2 tokens: nothing to predict")
        width = int(lengths.max())
        column = np.arange(width)
        real = column < lengths[:, None]
        self.ids = np.where(real, tokens[np.minimum(starts[:, None] + column, len(tokens) - 1)], separator_id)
        mask = np.zeros_like(real)
        for row, (s, e) in enumerate(zip(starts, ends)):
            mask[row, :e - s] = answer_mask(tokens[s:e], answer_start, end_of_turn_id)
        if not mask.any(axis=1).all():
            raise DataError(f"conversation {int(np.flatnonzero(~mask.any(axis=1))[0])} has no answer tokens")
        self.labels = np.where(mask, self.ids, self.IGNORE)
        self.lengths = lengths
        self.row_tokens = width - 1                      # the longest row a batch can hold (for memory checks)
        self.mean_row_tokens = float((lengths - 1).mean())   # a row's real tokens on average (the log's tok/s)
        self.data, self.block_size, self.batch_size = data, block_size, batch_size
        self.rng = np.random.Generator(np.random.PCG64(seed))

    def __len__(self):
        return len(self.ids)

    def rows(self, index):
        """The batch of the conversations at `index`, cut to its longest: (x, y), (B, T) each."""
        width = int(self.lengths[index].max())
        return self.ids[index, :width - 1], self.labels[index, 1:width]

    def next(self):
        return self.rows(self.rng.integers(0, len(self.ids), size=self.batch_size))

    def get_state(self):
        return self.rng.bit_generator.state

    def set_state(self, state):
        self.rng.bit_generator.state = state

    def accuracy(self, batch, logits):
        """(conversations whose every answer token is the argmax, conversations). With teacher
        forcing this is the exact match of greedy decoding (as PairBatches.accuracy: greedy follows
        the true prefix while its argmax is right), for answers that end the conversation."""
        y = np.asarray(batch[1])
        predicted = np.asarray(logits.numpy() if hasattr(logits, "numpy") else logits).argmax(-1)
        right = (predicted == y) | (y == self.IGNORE)
        return int(right.all(axis=1).sum()), len(y)
