"""A translation task small enough to learn on a laptop: dates written as people write them ->
ISO 8601.

    "3rd of March 2021", "MAR 3 2021", "wednesday, march 3, 2021", "03.03.2021"  ->  "2021-03-03"

Every date from 1900-01-01 to 2099-12-31 can appear, in any of SOURCE_FORMS, in title case, lower
case or upper case. ``split_dates(seed)`` divides the DATES (not the pairs) into training and
held-out ones, so a held-out date is never seen in training in any form: a model that scores on
them has learned to read dates, not remembered them.

    train_dates, val_dates = split_dates(seed=0)
    pairs = date_pairs(1000, seed=1, dates=train_dates)    # [(source, target), ...]
    tok = date_tokenizer()                                 # characters; PAD, BOS, EOS are ids 0, 1, 2

The vocabulary is characters. Its first three are the control characters NUL, SOH and STX, which
serve as PAD, BOS and EOS: a CharTokenizer sorts its characters, so they get the ids 0, 1 and 2
that Seq2SeqConfig expects, and a dataset of pairs is one token stream,
``source BOS target EOS source BOS target EOS ...`` (seq2seq_data.py reads it back into pairs).
"""
import datetime
import string

import numpy as np

from .text import write_dataset
from ..errors import ConfigError
from ..tokenizers import CharTokenizer

PAD, BOS, EOS = "\x00", "\x01", "\x02"         # ids 0, 1, 2 of date_tokenizer()
FIRST, LAST = datetime.date(1900, 1, 1), datetime.date(2099, 12, 31)
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def ordinal(day):
    """1 -> '1st', 2 -> '2nd', 3 -> '3rd', 11 -> '11th', 22 -> '22nd'."""
    suffix = "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


# name -> how that form writes a date (in title case; date_pairs changes the case)
SOURCE_FORMS = {
    "day month year": lambda d: f"{d.day} {MONTHS[d.month - 1]} {d.year}",             # 3 March 2021
    "month day, year": lambda d: f"{MONTHS[d.month - 1]} {d.day}, {d.year}",           # March 3, 2021
    "ordinal of month year": lambda d: f"{ordinal(d.day)} of {MONTHS[d.month - 1]} {d.year}",  # 3rd of March 2021
    "abbreviated": lambda d: f"{MONTHS[d.month - 1][:3]} {d.day} {d.year}",            # Mar 3 2021
    "weekday, month day, year": lambda d: f"{WEEKDAYS[d.weekday()]}, {MONTHS[d.month - 1]} {d.day}, {d.year}",
    "year month day": lambda d: f"{d.year} {MONTHS[d.month - 1]} {d.day}",             # 2021 March 3
    "dd.mm.yyyy": lambda d: f"{d.day:02d}.{d.month:02d}.{d.year}",                     # 03.03.2021 (day first)
}
CASES = {"title": lambda s: s, "lower": str.lower, "upper": str.upper}
CHARACTERS = PAD + BOS + EOS + string.ascii_letters + string.digits + " ,.-"


def target(date):
    """The ISO 8601 form: '2021-03-03'."""
    return date.isoformat()


def all_dates():
    """Every date from FIRST to LAST (73,049 of them), in order."""
    return [FIRST + datetime.timedelta(days=i) for i in range((LAST - FIRST).days + 1)]


def split_dates(seed=0, val_fraction=0.05):
    """(train_dates, val_dates): all dates shuffled by `seed`, the last val_fraction of them held
    out. The two lists share no date; each is sorted."""
    if not 0 < val_fraction < 1:
        raise ConfigError(f"split_dates: val_fraction must be in (0, 1), got {val_fraction}")
    dates = all_dates()
    order = np.random.default_rng(seed).permutation(len(dates))
    n_val = max(1, int(round(len(dates) * val_fraction)))
    val = sorted(dates[i] for i in order[:n_val])
    train = sorted(dates[i] for i in order[n_val:])
    return train, val


def date_pairs(n, seed=0, dates=None, forms=None, cases=None):
    """n (source, target) pairs: each a random date of `dates` (default: every date) written in a
    random form of `forms` (names of SOURCE_FORMS; default all) and a random case of `cases`
    ('title', 'lower', 'upper'; default all). The same arguments give the same pairs."""
    dates = all_dates() if dates is None else list(dates)
    forms = list(SOURCE_FORMS) if forms is None else list(forms)
    cases = list(CASES) if cases is None else list(cases)
    unknown = [f for f in forms if f not in SOURCE_FORMS] + [c for c in cases if c not in CASES]
    if unknown or not dates or not forms or not cases:
        raise ConfigError(f"date_pairs: needs dates, forms of {list(SOURCE_FORMS)} and cases of {list(CASES)}"
                          + (f"; unknown: {unknown}" if unknown else ""))
    rng = np.random.default_rng(seed)
    chosen = rng.integers(0, len(dates), n)
    return _write(dates, chosen, forms, cases, rng)


def pairs_of_dates(dates, seed=0, forms=None, cases=None):
    """One (source, target) pair per date of `dates`, in their order, each in a random form and
    case (as date_pairs): the held-out set, every held-out date once."""
    dates, forms = list(dates), list(SOURCE_FORMS) if forms is None else list(forms)
    cases = list(CASES) if cases is None else list(cases)
    return _write(dates, range(len(dates)), forms, cases, np.random.default_rng(seed))


def _write(dates, chosen, forms, cases, rng):
    n = len(chosen)
    picks = zip(chosen, rng.integers(0, len(forms), n), rng.integers(0, len(cases), n))
    return [(CASES[cases[c]](SOURCE_FORMS[forms[f]](dates[d])), target(dates[d])) for d, f, c in picks]


def date_tokenizer():
    """The characters of every source and target, PAD/BOS/EOS (ids 0, 1, 2) first."""
    return CharTokenizer(CHARACTERS)


def encode_pairs(pairs, tok=None):
    """The token stream of pairs: source BOS target EOS, one after the other."""
    tok = tok or date_tokenizer()
    return tok.encode("".join(f"{source}{BOS}{tgt}{EOS}" for source, tgt in pairs))


def prepare_dates(out_dir, n_train=100_000, seed=0, val_fraction=0.05):
    """Write a dataset of date pairs into out_dir (train.bin, val.bin, meta.json, as data.prepare):
    n_train pairs of the training dates, and one pair per held-out date. Returns the meta dict."""
    if n_train < 1:
        raise ConfigError(f"prepare_dates: n_train must be >= 1, got {n_train}")
    train_dates, val_dates = split_dates(seed, val_fraction)
    tok = date_tokenizer()
    train = date_pairs(n_train, seed + 1, dates=train_dates)
    val = pairs_of_dates(val_dates, seed + 2)
    return write_dataset(out_dir, tok, encode_pairs(train, tok), encode_pairs(val, tok), source="dates",
                         corpus={"name": "dates", "seed": seed, "train_pairs": len(train), "val_pairs": len(val),
                                 "train_dates": len(train_dates), "val_dates": len(val_dates)})


def date_chats(pairs):
    """The pairs as chats (data/chat.py): the user asks for the ISO form, the assistant gives it.

        [{"role": "user", "content": "Write 3rd of March 2021 as an ISO 8601 date."},
         {"role": "assistant", "content": "2021-03-03"}]"""
    return [[{"role": "user", "content": f"Write {source} as an ISO 8601 date."},
             {"role": "assistant", "content": tgt}] for source, tgt in pairs]


def dates_chat_splits(n_train=2000, n_val=200, seed=0, val_fraction=0.05):
    """(train chats, held-out chats) of the dates task as chat: n_train chats of the training dates
    and n_val of the held-out dates (split_dates: never trained on, in any form)."""
    if n_train < 1 or n_val < 1:
        raise ConfigError(f"dates_chat_splits: n_train and n_val must be >= 1, got {n_train} and {n_val}")
    train_dates, val_dates = split_dates(seed, val_fraction)
    if n_val > len(val_dates):
        raise ConfigError(f"dates_chat_splits: n_val={n_val} is more than the {len(val_dates)} held-out dates")
    held_out = sorted(np.random.default_rng(seed + 3).choice(len(val_dates), n_val, replace=False))
    return (date_chats(date_pairs(n_train, seed + 1, dates=train_dates)),
            date_chats(pairs_of_dates([val_dates[i] for i in held_out], seed + 2)))
