"""The README's Python example runs as written: a torch LSTM's weights in bptt, and back."""

import re
import textwrap
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_runs():
    torch = pytest.importorskip("torch")
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert blocks, "README has no python example"
    scope: dict = {}
    exec(compile(blocks[0], str(README), "exec"), scope)
    layer, tl, x, out = scope["layer"], scope["tl"], scope["x"], scope["out"]
    assert out.shape == (4, 25, 32)
    theirs = tl(torch.from_numpy(x))[0].detach().numpy()
    np.testing.assert_allclose(out, theirs, atol=1e-5)
    assert set(layer.grads) == set(tl.state_dict())


def test_readme_state_grads_example_runs():
    pytest.importorskip("torch")
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    scope: dict = {}
    exec(compile(blocks[0], str(README), "exec"), scope)
    exec(compile(textwrap.dedent(blocks[1]), str(README), "exec"), scope)
    assert scope["dh"].shape == scope["dc"].shape == (2, 4, 25, 32)
    assert scope["reach"].shape == (25,) and scope["reach"][-1] > 0
