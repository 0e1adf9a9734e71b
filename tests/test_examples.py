"""The examples run and do what their docstrings say (briefly: few steps)."""

import importlib.util
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_variable_lengths_example_learns_from_sequences_of_different_lengths(capsys):
    result = load("variable_lengths").main(["--steps", "150"])
    assert result["loss"] < 0.5 * result["first_loss"]
    assert result["accuracy"] > 0.9  # chance is about 0.5
    assert "accuracy with lengths=" in capsys.readouterr().out
