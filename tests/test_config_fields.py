"""One rule for what a config field admits (models.base.field_kind / fits_kind): the model configs,
TrainConfig and the command line's flags read a field's type the same way."""
import dataclasses
import math

import numpy as np
import pytest

from tinygrad_lm.cli import build_parser
from tinygrad_lm.errors import ConfigError
from tinygrad_lm.models import GPTConfig
from tinygrad_lm.models.base import check_field_types, field_kind
from tinygrad_lm.training.config import TrainConfig

INTS = [(3, True), (np.int64(3), True), (3.0, False), (1e12, False), (True, False), ("3", False), (None, False)]
FLOATS = [(0.1, True), (1, True), (np.float32(0.5), True), (math.inf, False), (math.nan, False), (True, False),
          ("0.1", False)]


def _accepts_train(name, value):
    try:
        dataclasses.replace(TrainConfig(), **{name: value})
        return True
    except ConfigError as e:
        if "must be" in str(e) and f"{name}=" in str(e):
            return False
        raise


def _accepts_model(name, value):
    try:
        check_field_types(GPTConfig, {name: value})
        return True
    except ConfigError:
        return False


@pytest.mark.parametrize("value, ok", INTS)
def test_an_integer_field_admits_the_same_values_in_every_config(value, ok):
    assert _accepts_model("n_layer", value) is ok
    assert _accepts_train("batch_size", value) is ok


@pytest.mark.parametrize("value, ok", FLOATS)
def test_a_float_field_admits_the_same_values_in_every_config(value, ok):
    assert _accepts_model("dropout", value) is ok
    assert _accepts_train("weight_decay", value) is ok


def test_both_configs_word_a_wrong_type_alike():
    with pytest.raises(ConfigError, match=r"GPTConfig: n_layer=2.5 must be an integer"):
        check_field_types(GPTConfig, {"n_layer": 2.5})
    with pytest.raises(ConfigError, match=r"TrainConfig: batch_size=2.5 must be an integer"):
        TrainConfig(batch_size=2.5)


def test_the_flags_parse_each_field_as_its_declared_kind():
    train = next(a for a in build_parser()._subparsers._group_actions[0].choices["train"]._actions
                 if a.dest == "batch_size")
    assert train.type is field_kind(next(f for f in dataclasses.fields(TrainConfig) if f.name == "batch_size")) is int
    lr = next(a for a in build_parser()._subparsers._group_actions[0].choices["train"]._actions
              if a.dest == "learning_rate")
    assert lr.type is float
