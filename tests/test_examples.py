"""The examples that back numbers in the docs run, at tiny sizes: examples/course_to_engine.py
(its seven versions must give the same gradients before it times them) and
examples/gradcheck_report.py (every backward passes), examples/variable_lengths.py (it learns) and
the first example of docs/variable_lengths.md."""

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("batch", [1, 3])
def test_course_to_engine_versions_agree(batch, capsys):
    out = load("course_to_engine").main(["--inputs", "5", "--hidden", "6", "--batch", str(batch),
                                          "--steps", "4", "--repeat", "1"])
    text = capsys.readouterr().out
    assert "gradients of all seven versions agree" in text
    assert set(out["rnn"]) == {"0 course", "1 loop", "2 time-major", "3 gemm", "4 project",
                               "5 buffers", "6 engine"}


def test_gradcheck_report_passes(capsys):
    with pytest.raises(SystemExit) as done:
        load("gradcheck_report").main([])
    text = capsys.readouterr().out
    assert done.value.code == 0, text
    assert "gru_backward (the lecture's GRU)" in text and "FAILED" not in text


def test_variable_lengths_example_learns_from_sequences_of_different_lengths(capsys):
    result = load("variable_lengths").main(["--steps", "150"])
    assert result["loss"] < 0.5 * result["first_loss"]
    assert result["accuracy"] > 0.9  # chance is about 0.5
    assert "accuracy with lengths=" in capsys.readouterr().out


def test_variable_lengths_doc_example_runs():
    doc = (EXAMPLES.parent / "docs" / "variable_lengths.md").read_text(encoding="utf-8")
    scope: dict = {}
    exec(re.findall(r"```python\n(.*?)```", doc, re.S)[0], scope)
    out, dx, lengths = scope["out"], scope["dx"], scope["lengths"]
    assert out.shape == (3, 10, 64)
    padded = np.arange(10)[None, :] >= lengths[:, None]  # (B, T)
    assert not np.any(out[padded]) and not np.any(dx[padded]) and np.all(out[~padded] != 0)
