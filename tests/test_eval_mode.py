"""nn.eval_mode: one way to run a block with dropout off that gives every submodule its own mode
back, also when the block raises (evaluation, decoding, attention capture and the probes use it)."""
import numpy as np
import pytest

from tinygrad_lm import nn
from tinygrad_lm.models import GPT, GPTConfig
from tinygrad_lm.models.generation import generate
from tinygrad_lm.training.evaluate import batch_losses


def small_gpt():
    return GPT(GPTConfig.gpt2(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8, dropout=0.1))


def test_eval_mode_turns_dropout_off_inside_and_restores_each_submodule():
    model = small_gpt()
    frozen = next(m for m in model.modules() if isinstance(m, nn.Dropout))
    frozen.eval()                                   # one submodule kept in eval mode by its owner
    before = [m.training for m in model.modules()]
    assert before.count(False) == 1
    with nn.eval_mode(model) as inside:
        assert inside is model and not any(m.training for m in model.modules())
    assert [m.training for m in model.modules()] == before


def test_eval_mode_restores_the_modes_when_the_block_raises():
    model = small_gpt()
    with pytest.raises(ZeroDivisionError):
        with nn.eval_mode(model):
            1 / 0
    assert all(m.training for m in model.modules())


class Exploding(nn.Module):
    """A model whose forward fails: whoever called it must still get a training model back."""

    def __init__(self):
        super().__init__()
        self.drop = nn.Dropout(0.5)

    def forward(self, *args, **kwargs):
        raise RuntimeError("boom")


@pytest.mark.parametrize("use", [
    lambda m: batch_losses(m, np.arange(100) % 7, 4, 2, 1, seed=0),
    lambda m: generate(m, np.zeros((1, 1), dtype=np.int64), 2),
])
def test_evaluation_and_decoding_leave_the_model_training_after_an_error(use):
    model = Exploding()
    with pytest.raises(Exception):
        use(model)
    assert model.training and model.drop.training
