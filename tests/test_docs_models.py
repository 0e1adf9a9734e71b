"""Every code block of docs/models.md runs, in order, in one namespace (as a reader would
paste them), in a temporary folder; the blocks assert what they claim."""

import os
import pathlib
import re

import pytest

DOC = pathlib.Path(__file__).resolve().parent.parent / "docs" / "models.md"


def blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def test_docs_models_code_blocks_run(tmp_path, capsys):
    pytest.importorskip("torch")
    pytest.importorskip("safetensors")
    found = blocks()
    assert len(found) >= 6
    here = os.getcwd()
    os.chdir(tmp_path)
    try:
        namespace: dict = {}
        for i, code in enumerate(found):
            exec(compile(code, f"docs/models.md block {i + 1}", "exec"), namespace)
    finally:
        os.chdir(here)
    out = capsys.readouterr().out
    assert "(rnn): LSTM(16, 16" in out and "True" in out.splitlines()[-2]
    assert float(out.splitlines()[-3]) < 1e-5      # ours against torch's output
