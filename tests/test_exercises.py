"""The fill-in exercises' checker: a correct backward passes, a planted wrong gradient is named,
a stub is reported as not written, and the command a learner runs says the same with its exit status."""
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from tinygrad_lm.teaching.exercises import EXERCISES, check, reference_solution

LESSONS = pathlib.Path(__file__).resolve().parent.parent / "lessons"


@pytest.mark.parametrize("name", list(EXERCISES))
def test_a_correct_solution_passes(name):
    report = check(name, reference_solution(name))
    assert report.passed and report.wrong == [], str(report)


@pytest.mark.parametrize("name", list(EXERCISES))
def test_each_planted_wrong_gradient_is_named(name):
    """Perturb one returned gradient at a time (one element, by 1e-3): the report names exactly it."""
    grad_names = EXERCISES[name].grad_names
    for k, wrong in enumerate(grad_names):
        def planted(*args, **kwargs):
            grads = [np.array(g, dtype=np.float64) for g in reference_solution(name)(*args, **kwargs)]
            grads[k].reshape(-1)[-1] += 1e-3
            return tuple(grads)
        report = check(name, planted)
        assert not report.passed and report.wrong == [wrong], str(report)
        assert f"WRONG {wrong}:" in str(report) and "finite differences" in str(report)


def test_a_gradient_of_the_wrong_shape_and_a_stub_are_reported():
    def transposed(Q, K, V, G, scale):
        dQ, dK, dV = reference_solution("attention_backward")(Q, K, V, G, scale)
        return dQ, dK, dV.T
    report = check("attention_backward", transposed)
    assert report.wrong == ["dV"] and "shape (3, 5), expected (5, 3)" in str(report)

    def stub(x, weight, bias, G, eps):
        raise NotImplementedError
    report = check("layer_norm_backward", stub)
    assert not report.passed and "not written yet" in str(report)


def test_the_lessons_stubs_are_stubs():
    sys.path.insert(0, str(LESSONS))
    import exercises
    for name in EXERCISES:
        assert not check(name, getattr(exercises, name)).passed


def run_checker(*args):
    return subprocess.run([sys.executable, str(LESSONS / "check_exercise.py"), *args],
                          capture_output=True, text=True, timeout=120)


def test_the_checker_command(tmp_path):
    answers = tmp_path / "answers.py"
    answers.write_text(
        "from tinygrad_lm.teaching.exercises import reference_solution\n"
        "layer_norm_backward = reference_solution('layer_norm_backward')\n"
        "def attention_backward(Q, K, V, G, scale):\n"
        "    dQ, dK, dV = reference_solution('attention_backward')(Q, K, V, G, scale)\n"
        "    return dQ, dK, 2 * dV                    # planted: dV doubled\n")
    good = run_checker("layer_norm_backward", "--file", str(answers))
    assert good.returncode == 0 and "all gradients correct" in good.stdout, good.stdout + good.stderr
    bad = run_checker("attention_backward", "--file", str(answers))
    assert bad.returncode == 1 and "wrong: dV" in bad.stdout and "WRONG dV" in bad.stdout, bad.stdout + bad.stderr
    stub = run_checker("softmax_backward")                          # the lesson's own stubs
    assert stub.returncode == 1 and "not written yet" in stub.stdout
    assert run_checker("--all", "--solution").returncode == 0


def test_numerical_gradients_match_autograd_and_leave_the_inputs_alone():
    import tinygrad_lm as tg
    from tinygrad_lm.gradcheck import numerical_gradients
    rng = np.random.default_rng(3)
    x, w, g = rng.standard_normal((3, 4)), rng.standard_normal((4, 2)), rng.standard_normal((3, 2))
    before = (x.copy(), w.copy())
    nx, nw = numerical_gradients(lambda a, b: (a @ b).tanh(), [x, w], g)
    X, W = tg.Tensor(x, requires_grad=True), tg.Tensor(w, requires_grad=True)
    (X @ W).tanh().backward(g)
    np.testing.assert_allclose(nx, X.grad.numpy(), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(nw, W.grad.numpy(), rtol=1e-6, atol=1e-8)
    assert np.array_equal(x, before[0]) and np.array_equal(w, before[1])
