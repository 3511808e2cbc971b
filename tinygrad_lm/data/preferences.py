"""Preference data for DPO: pairs of answers to one prompt, the chosen one and the rejected one,
as JSONL in trl's two preference formats, one pair per line:

    {"prompt": [{"role": "user", "content": "Write 3rd of March 2021 as an ISO 8601 date."}],
     "chosen": [{"role": "assistant", "content": "2021-03-03"}],
     "rejected": [{"role": "assistant", "content": "The ISO 8601 date is 2021-03-3."}]}   <- conversational
    {"prompt": "Write 3rd of March 2021 ...", "chosen": "2021-03-03", "rejected": "..."}  <- standard (text:
                                                                                              a user message
                                                                                              and the replies)

    pairs = read_preference_jsonl("pairs.jsonl")       # [(prompt messages, chosen, rejected), ...], checked
    prepare_preferences(pairs, val_pairs, "data/prefs", tok, template)
    batches = PreferenceBatches(load_split("data/prefs", "train"), 128, 4, **chat_batch_settings(meta),
                                reference=store)
    store[batches.key] = batches.reference_log_probs(model)    # once, with the weights training starts from
    logits, loss = batches.compute_loss(model, batches.next())  # DPO's loss; batches.last holds the rewards

How a dataset is stored. Each pair is two conversations of data/chat.py, the prompt with the
chosen answer and the prompt with the rejected one, written one after the other (chosen first);
meta.json's "chat" entry finds the answers again, its "preference" entry says the conversations
come in pairs. The loss needs each answer's log-probability given its prompt (a sum over the
answer's tokens and its <|im_end|>), so only the final answer may be labelled: a prompt holds no
assistant message (read_preference_jsonl refuses one).

The reference. DPO compares the policy with the model it started from. Its log-probabilities
of every answer are computed once, before the first step, with the starting weights (for LoRA,
the base: B = 0 there), and kept in `reference`, a dict from a split's key (a hash of its token
rows) to one number per conversation; a run saves that dict in its checkpoints, so a resumed run
uses the same numbers without a frozen copy of the model.
"""
import hashlib

import numpy as np

from ..errors import ConfigError, DataError
from ..nn import eval_mode
from ..nn import functional as F
from ..tensor import no_grad
from .chat import MAX_JSONL_BYTES, ChatBatches, check_chat, prepare_chat, read_jsonl, write_jsonl


def read_preference_jsonl(path, max_bytes=MAX_JSONL_BYTES):
    """The pairs of a JSONL file, each (prompt messages, chosen message, rejected message),
    checked (check_preference). DataError names the file and line."""
    return read_jsonl(path, check_preference, "preference pair", max_bytes)


def check_preference(record, where="a pair"):
    """(prompt messages, chosen message, rejected message) of one record {"prompt", "chosen",
    "rejected"}, in either of trl's formats; DataError says what is wrong, starting with `where`."""
    if not isinstance(record, dict) or not all(k in record for k in ("prompt", "chosen", "rejected")):
        raise DataError(f"{where}: not a preference pair: expected {{\"prompt\": ..., \"chosen\": ..., "
                        "\"rejected\": ...}")
    prompt = record["prompt"]
    if isinstance(prompt, str):
        prompt = [{"role": "user", "content": prompt}]
    if not isinstance(prompt, list) or not prompt:
        raise DataError(f"{where}: the prompt is neither a text nor a list of messages")
    if any(isinstance(m, dict) and m.get("role") == "assistant" for m in prompt):
        raise DataError(f"{where}: the prompt holds an assistant message; only the final answer may be "
                        "compared (give earlier turns as context in a system or user message)")
    prompt = check_chat(prompt + [{"role": "assistant", "content": ""}], f"{where} (prompt)")[:-1]
    answers = []
    for name in ("chosen", "rejected"):
        answer = record[name]
        if isinstance(answer, str):
            answer = [{"role": "assistant", "content": answer}]
        if not (isinstance(answer, list) and len(answer) == 1 and isinstance(answer[0], dict)
                and answer[0].get("role") == "assistant"):
            raise DataError(f"{where}: {name} must be a text or one assistant message, "
                            f"[{{\"role\": \"assistant\", \"content\": ...}}]")
        answers.append(check_chat(answer, f"{where} ({name})")[0])
    if answers[0]["content"] == answers[1]["content"]:
        raise DataError(f"{where}: chosen and rejected are the same answer: nothing to prefer")
    return prompt, answers[0], answers[1]


def preference_chats(pairs):
    """The conversations a pair list is stored as: prompt + chosen, prompt + rejected, per pair."""
    return [prompt + [answer] for prompt, chosen, rejected in pairs for answer in (chosen, rejected)]


def write_preference_jsonl(pairs, path):
    """Write pairs as JSONL in trl's conversational preference format, atomically."""
    write_jsonl(({"prompt": prompt, "chosen": [chosen], "rejected": [rejected]} for prompt, chosen, rejected in pairs),
                path)


def prepare_preferences(train_pairs, val_pairs, out_dir, tok, template, **extra):
    """Write train.bin, val.bin and meta.json for preference pairs (see the module's docstring)."""
    meta_pairs = {"train_pairs": len(train_pairs), "val_pairs": len(val_pairs)}
    return prepare_chat(preference_chats(train_pairs), preference_chats(val_pairs), out_dir, tok, template,
                        preference=meta_pairs, **extra)

# 1e-3 nats: far above the float32 rounding of an answer's log-probability (a sum of a few dozen
# log-softmax terms, each rounded to about 1e-6 relative), far below a preference that was learned
RANKING_TOLERANCE = 1e-3


class PreferenceBatches(ChatBatches):
    """The batch source of preference data (the protocol of data.CausalLMBatches plus
    ``compute_loss``): batch_size random pairs as ``(x, y, reference)``, the chosen answers' rows
    first, then the rejected ones' (2 batch_size rows, right-padded, labels on the answers only),
    and the reference log-probabilities of those rows."""

    def __init__(self, data, block_size, batch_size, seed=0, separator_id=0, answer_start=(), end_of_turn_id=2,
                 beta=0.1, reference=None, rpo_alpha=0.0):
        super().__init__(data, block_size, batch_size, seed, separator_id, answer_start, end_of_turn_id)
        if len(self.ids) % 2:
            raise DataError(f"{len(self.ids)} conversations: a preference dataset holds them in pairs")
        if not beta > 0 or not rpo_alpha >= 0:
            raise ConfigError(f"PreferenceBatches: beta must be > 0 and rpo_alpha >= 0, got {beta} and {rpo_alpha}")
        self.beta, self.reference, self.last, self.rpo_alpha = float(beta), reference, None, float(rpo_alpha)
        self.rows_per_batch = 2 * batch_size
        self.key = hashlib.sha256(np.ascontiguousarray(self.ids).tobytes()).hexdigest()[:16]

    def __len__(self):
        return len(self.ids) // 2

    def pair_rows(self, pairs):
        """The batch of the pairs at `pairs`: (x, y, reference), chosen rows first."""
        pairs = np.asarray(pairs)
        index = np.concatenate([2 * pairs, 2 * pairs + 1])
        x, y = self.rows(index)
        return x, y, self.reference_of(index)

    def next(self):
        return self.pair_rows(self.rng.integers(0, len(self), size=self.batch_size))

    def reference_of(self, index):
        known = None if self.reference is None else self.reference.get(self.key)
        if known is None:
            raise ConfigError("no reference log-probabilities for this data: compute them once with "
                              "reference_log_probs(model) before training, and keep them in `reference`")
        return np.asarray(known, dtype=np.float64)[index]

    @no_grad()
    def reference_log_probs(self, model, rows=16):
        """log p(answer | prompt) of every conversation under `model` (in eval mode, `rows` at a
        time), as a list: the reference, computed once with the weights training starts from."""
        order = np.argsort(self.lengths, kind="stable")       # rows of like length together: little padding
        out = np.zeros(len(self.ids))
        with eval_mode(model):
            for start in range(0, len(order), rows):
                index = order[start:start + rows]
                logits, _ = model(self.rows(index)[0])
                out[index] = F.sequence_log_probs(logits, self.rows(index)[1]).numpy()
        return out.tolist()

    def compute_loss(self, model, batch):
        """(logits, DPO's loss) of a batch; self.last: its rewards beta (log pi - log ref) of the
        chosen and rejected answers, their mean margin and the fraction of pairs ranked right.

        With rpo_alpha > 0 (trl's name; Pang et al., 2024, "Iterative Reasoning Preference
        Optimization"), plus rpo_alpha times the chosen answers' mean negative log-likelihood per
        token: DPO alone only asks the chosen answer to gain on the rejected one, and can meet that
        by lowering both, the chosen one less; the likelihood term keeps the chosen answer likely."""
        x, y, reference = batch
        logits, _ = model(x)
        logps = F.sequence_log_probs(logits, y)
        n = len(reference) // 2
        loss = F.dpo_loss(logps[:n], logps[n:], reference[:n], reference[n:], self.beta)
        if self.rpo_alpha:
            tokens = int((np.asarray(y[:n]) != self.IGNORE).sum())
            loss = loss + logps[:n].sum() * (-self.rpo_alpha / tokens)
        self.last = self.rewards(logps.numpy(), reference)
        return logits, loss

    def rewards(self, logps, reference):
        n = len(reference) // 2
        reward = self.beta * (np.asarray(logps, dtype=np.float64) - reference)
        chosen, rejected = reward[:n], reward[n:]
        return {"chosen": float(chosen.mean()), "rejected": float(rejected.mean()),
                "margin": float((chosen - rejected).mean()), "accuracy": float(self.ranked_right(logps, reference).mean())}

    @staticmethod
    def ranked_right(logps, reference):
        """Per pair: does the policy prefer the chosen answer more than the reference did, by more
        than RANKING_TOLERANCE nats? The reference was computed on rows padded otherwise, so at
        the start (policy = reference) the two differ by float rounding alone, either way."""
        n = len(reference) // 2
        moved = np.asarray(logps, dtype=np.float64) - reference
        return moved[:n] - moved[n:] > RANKING_TOLERANCE

    def accuracy(self, batch, logits):
        """(pairs ranked right, pairs): DPO's reward accuracy (ranked_right)."""
        x, y, reference = batch
        with no_grad():
            logps = F.sequence_log_probs(logits, y).numpy()
        return int(self.ranked_right(logps, reference).sum()), len(reference) // 2
