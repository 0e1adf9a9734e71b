"""The examples run and do what their docstrings say, at tiny sizes: examples/course_to_engine.py
(its seven versions must give the same gradients before it times them),
examples/gradcheck_report.py (every backward passes) and examples/variable_lengths.py (it learns
from sequences of different lengths)."""

import importlib.util
from pathlib import Path

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
