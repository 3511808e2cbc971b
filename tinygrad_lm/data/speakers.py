"""A classification task from tiny Shakespeare: who says this speech? The play is written as
speeches, each a speaker's name and a colon on a line of its own, the speech below, a blank line
after:

    ROMEO:
    Is the day so young?

The task takes the `n_speakers` speakers with the most speeches, the same number of speeches from
each (balanced: the majority class is 1 / n_speakers), split at random into training and held-out
speeches. A speech is cut to `max_chars` characters at a word boundary.

    task = speaker_task(read_utf8(shakespeare()), n_speakers=4)
    task.names                      # ['GLOUCESTER', 'DUKE VINCENTIO', 'MENENIUS', 'ROMEO']
    task.train[0]                   # ('Is the day so young?', 3)
    batches = ClassificationBatches(encode_examples(tok, task.train), batch_size=16, pad_id=0)
    input_ids, attention_mask, labels = batches.next()
"""
import re
from collections import Counter
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, DataError
from ..nn import Linear
from ..nn import functional as F
from ..optim import AdamW
from ..random import manual_seed
from ..tensor import Tensor, no_grad

SPEAKER = re.compile(r"^([A-Z][A-Za-z' ]*[A-Za-z]):\n(.+)", re.S)


def speeches(text):
    """[(speaker, speech), ...] in the order of the text: every block that starts with a name line."""
    found = []
    for block in re.split(r"\n\s*\n", text):
        m = SPEAKER.match(block.strip("\n"))
        if m:
            found.append((m.group(1), " ".join(m.group(2).split())))
    return found


def _cut(speech, max_chars):
    if len(speech) <= max_chars:
        return speech
    cut = speech[:max_chars + 1].rsplit(" ", 1)[0]
    return cut if cut else speech[:max_chars]


@dataclass
class SpeakerTask:
    names: list            # label i is names[i]
    train: list            # [(speech, label), ...]
    val: list


def speaker_task(text, n_speakers=4, per_speaker=None, val_fraction=0.2, max_chars=200, seed=0):
    """The task described above. per_speaker: speeches per speaker (default: as many as the
    speaker with the fewest of the n_speakers has); each speaker's are split alike."""
    if n_speakers < 2:
        raise ConfigError(f"speaker_task: n_speakers must be >= 2, got {n_speakers}")
    if not 0 < val_fraction < 1:
        raise ConfigError(f"speaker_task: val_fraction must be in (0, 1), got {val_fraction}")
    found = speeches(text)
    counts = Counter(speaker for speaker, _ in found).most_common(n_speakers)
    if len(counts) < n_speakers:
        raise DataError(f"the text has {len(counts)} speakers, fewer than the {n_speakers} asked for")
    names = [name for name, _ in counts]
    per_speaker = per_speaker or counts[-1][1]
    if per_speaker > counts[-1][1]:
        raise ConfigError(f"speaker_task: {per_speaker} speeches per speaker asked, but {names[-1]} has "
                          f"{counts[-1][1]}")
    rng = np.random.default_rng(seed)
    train, val = [], []
    n_val = max(1, int(round(per_speaker * val_fraction)))
    for label, name in enumerate(names):
        own = [_cut(s, max_chars) for speaker, s in found if speaker == name]
        picked = [own[i] for i in rng.permutation(len(own))[:per_speaker]]
        val += [(s, label) for s in picked[:n_val]]
        train += [(s, label) for s in picked[n_val:]]
    order = rng.permutation(len(train))
    return SpeakerTask(names, [train[i] for i in order], val)


def encode_examples(tok, examples):
    """[(ids, label), ...]: each text encoded by the tokenizer."""
    return [(tok.encode(text), label) for text, label in examples]


class ClassificationBatches:
    """Batches of (input_ids, attention_mask, labels) from [(ids, label), ...]: batch_size random
    examples, right-padded with pad_id to the longest of the batch, attention_mask 1 on the real
    tokens (a causal model reads the last real token's state; see LlamaForSequenceClassification)."""

    def __init__(self, examples, batch_size, pad_id=0, seed=0):
        if batch_size < 1:
            raise ConfigError(f"ClassificationBatches: batch_size must be >= 1, got {batch_size}")
        if not examples:
            raise DataError("no examples to draw batches from")
        if any(len(ids) == 0 for ids, _ in examples):
            raise DataError("an example has no tokens: its last real token does not exist")
        self.examples, self.batch_size, self.pad_id = examples, batch_size, pad_id
        self.rng = np.random.Generator(np.random.PCG64(seed))

    def __len__(self):
        return len(self.examples)

    def rows(self, index):
        picked = [self.examples[i] for i in index]
        width = max(len(ids) for ids, _ in picked)
        x = np.full((len(picked), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(picked), width), dtype=np.int64)
        for row, (ids, _) in enumerate(picked):
            x[row, :len(ids)], mask[row, :len(ids)] = ids, 1
        return x, mask, np.array([label for _, label in picked], dtype=np.int64)

    def next(self):
        return self.rows(self.rng.integers(0, len(self.examples), size=self.batch_size))

    def get_state(self):
        return self.rng.bit_generator.state

    def set_state(self, state):
        self.rng.bit_generator.state = state

    def accuracy(self, batch, logits):
        predicted = np.asarray(logits.numpy() if hasattr(logits, "numpy") else logits).argmax(-1)
        return int((predicted == batch[2]).sum()), len(batch[2])


def majority_baseline(train, val):
    """Held-out accuracy of always answering the training set's most common label."""
    labels = [label for _, label in train]
    majority = max(set(labels), key=labels.count)
    return sum(label == majority for _, label in val) / len(val)


def character_counts(texts, alphabet):
    """(N, len(alphabet)) the frequency of each character in each text (characters outside the
    alphabet are not counted)."""
    column = {ch: i for i, ch in enumerate(alphabet)}
    x = np.zeros((len(texts), len(alphabet)))
    for row, text in enumerate(texts):
        for ch in text:
            if ch in column:
                x[row, column[ch]] += 1
        x[row] /= max(len(text), 1)
    return x


def bag_of_characters_baseline(train, val, steps=500, lr=0.05, weight_decay=1e-3, seed=0):
    """Held-out accuracy of a linear classifier (multinomial logistic regression, trained full
    batch with AdamW) on each text's character frequencies: what the order of the characters adds
    nothing to. Features standardised on the training set."""
    alphabet = sorted({ch for text, _ in train for ch in text})
    x_train = character_counts([t for t, _ in train], alphabet)
    mean, std = x_train.mean(0), x_train.std(0) + 1e-8
    x_train, x_val = (x_train - mean) / std, (character_counts([t for t, _ in val], alphabet) - mean) / std
    y_train = np.array([label for _, label in train])
    n_labels = int(max(y_train.max(), max(label for _, label in val))) + 1
    manual_seed(seed)
    head = Linear(len(alphabet), n_labels, dtype=np.float64)
    opt = AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    inputs = Tensor(x_train)
    for _ in range(steps):
        loss = F.cross_entropy(head(inputs), y_train)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with no_grad():
        predicted = head(Tensor(x_val)).numpy().argmax(-1)
    return float((predicted == np.array([label for _, label in val])).mean())
