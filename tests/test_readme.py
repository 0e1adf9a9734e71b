"""The README's Python examples run as written: the course's RNN, a torch LSTM's weights in bptt
and back, the per-step state gradients, and a model from parts that learns."""

import re
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def block(containing: str) -> str:
    """The README's python block that contains ``containing`` (exactly one)."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    found = [b for b in blocks if containing in b]
    assert len(found) == 1, f"{len(found)} README python blocks contain {containing!r}"
    return found[0]


def run(code: str, scope: dict | None = None) -> dict:
    scope = {} if scope is None else scope
    exec(compile(code, str(README), "exec"), scope)
    return scope


def test_readme_course_example_runs():
    scope = run(block("sw.rnn_forward"))
    assert scope["a"].shape == (5, 10, 4) and scope["y_pred"].shape == (2, 10, 4)
    assert set(scope["grads"]) == {"dx", "da0", "dWax", "dWaa", "dba"}


def test_readme_engine_example_runs():
    torch = pytest.importorskip("torch")
    scope = run(block("tl.load_state_dict"))
    layer, tl, x, out = scope["layer"], scope["tl"], scope["x"], scope["out"]
    assert out.shape == (4, 25, 32)
    theirs = tl(torch.from_numpy(x))[0].detach().numpy()
    np.testing.assert_allclose(out, theirs, atol=1e-5)
    assert set(layer.grads) == set(tl.state_dict())


def test_readme_state_grads_example_runs():
    pytest.importorskip("torch")
    scope = run(block("keep_state_grads=True"), run(block("tl.load_state_dict")))
    assert scope["dh"].shape == scope["dc"].shape == (2, 4, 25, 32)
    assert scope["reach"].shape == (25,) and scope["reach"][-1] > 0


def test_readme_model_from_parts_learns():
    code = block("model.backward(crit.backward())")
    first = run(code.replace("range(50)", "range(1)"))["loss"]
    assert run(code)["loss"] < 0.5 * first
