"""The dates corpus (dates.py): every source form parses back to its target, the held-out dates
are never trained on, the generation is seeded, and the vocabulary puts PAD/BOS/EOS at 0/1/2."""
import datetime
import json
import re

import numpy as np
import pytest

from tinygrad_lm.data import dates as D
from tinygrad_lm.data.text import load_meta, load_split
from tinygrad_lm.errors import ConfigError

MONTH = {name.lower(): i + 1 for i, name in enumerate(D.MONTHS)}
MONTH.update({name[:3].lower(): i + 1 for i, name in enumerate(D.MONTHS)})
WEEKDAY = {name.lower(): i for i, name in enumerate(D.WEEKDAYS)}


def read_back(source):
    """An independent reader of every form (regular expressions): (date, weekday or None)."""
    s = source.lower()
    patterns = [
        (r"(\d{1,2}) ([a-z]+) (\d{4})", "d m y"), (r"([a-z]+) (\d{1,2}), (\d{4})", "m d y"),
        (r"(\d{1,2})(?:st|nd|rd|th) of ([a-z]+) (\d{4})", "d m y"), (r"([a-z]{3}) (\d{1,2}) (\d{4})", "m d y"),
        (r"([a-z]+), ([a-z]+) (\d{1,2}), (\d{4})", "w m d y"), (r"(\d{4}) ([a-z]+) (\d{1,2})", "y m d"),
        (r"(\d{2})\.(\d{2})\.(\d{4})", "d n y")]
    for pattern, order in patterns:
        m = re.fullmatch(pattern, s)
        if m:
            parts = dict(zip(order.split(), m.groups()))
            month = int(parts["n"]) if "n" in parts else MONTH[parts["m"]]
            return datetime.date(int(parts["y"]), month, int(parts["d"])), WEEKDAY.get(parts.get("w"))
    raise AssertionError(f"no form reads {source!r}")


def test_every_form_writes_the_date_its_target_names():
    pairs = D.date_pairs(5000, seed=3)
    for source, target in pairs:
        date, weekday = read_back(source)
        assert target == date.isoformat()
        assert weekday is None or weekday == date.weekday()
        assert len(source) <= 29 and len(target) == 10


def test_each_form_and_case_appears_and_the_examples_of_the_brief_come_out_exactly():
    march3 = datetime.date(2021, 3, 3)
    written = {name: form(march3) for name, form in D.SOURCE_FORMS.items()}
    assert set(written.values()) >= {"3 March 2021", "March 3, 2021", "3rd of March 2021", "Mar 3 2021",
                                     "Wednesday, March 3, 2021", "2021 March 3", "03.03.2021"}
    sources = [s for s, _ in D.date_pairs(3000, seed=0)]
    assert any(s.isupper() for s in sources) and any(s.islower() for s in sources)
    assert any(s != s.lower() and s != s.upper() for s in sources)            # title case
    assert [D.ordinal(d) for d in (1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 31)] == \
        ["1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "23rd", "31st"]


def test_the_held_out_dates_are_never_training_dates_and_cover_the_whole_range():
    train, val = D.split_dates(seed=0)
    assert len(train) + len(val) == len(D.all_dates()) == (D.LAST - D.FIRST).days + 1
    assert not set(train) & set(val)
    assert min(val) < datetime.date(1920, 1, 1) and max(val) > datetime.date(2080, 1, 1)
    pairs = D.date_pairs(2000, seed=1, dates=train)
    assert not {t for _, t in pairs} & {d.isoformat() for d in val}
    assert D.split_dates(seed=1)[1] != val                        # the seed chooses them


def test_the_same_seed_gives_the_same_pairs_and_another_seed_others():
    assert D.date_pairs(50, seed=7) == D.date_pairs(50, seed=7)
    assert D.date_pairs(50, seed=7) != D.date_pairs(50, seed=8)
    with pytest.raises(ConfigError):
        D.date_pairs(5, forms=["no such form"])


def test_the_vocabulary_reads_every_pair_with_pad_bos_eos_first():
    tok = D.date_tokenizer()
    assert tok.encode(D.PAD + D.BOS + D.EOS) == [0, 1, 2]
    for source, target in D.date_pairs(500, seed=4):
        assert tok.decode(tok.encode(source)) == source and min(tok.encode(source + target)) > 2


def test_prepare_writes_pairs_of_training_dates_and_every_held_out_date_once(tmp_path):
    meta = D.prepare_dates(tmp_path / "dates", n_train=300, seed=5)
    assert load_meta(tmp_path / "dates")["corpus"] == meta["corpus"]
    tok = D.date_tokenizer()
    text = {split: tok.decode(np.asarray(load_split(tmp_path / "dates", split)).tolist()) for split in ("train", "val")}
    pairs = {split: [tuple(r.split(D.BOS)) for r in t.split(D.EOS)[:-1]] for split, t in text.items()}
    train_dates, val_dates = D.split_dates(seed=5)
    assert len(pairs["train"]) == 300
    assert [t for _, t in pairs["val"]] == [d.isoformat() for d in val_dates]
    assert {t for _, t in pairs["train"]} <= {d.isoformat() for d in train_dates}
    assert json.loads((tmp_path / "dates" / "meta.json").read_text())["vocab_size"] == len(D.CHARACTERS)
