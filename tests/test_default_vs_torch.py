"""benchmarks/default_vs_torch.py: the training clock rebuilt from metrics.csv, the value at a
mark, the table's format (on made-up results), and one tiny end-to-end run (needs torch).
Nothing is timed: the tiny run's numbers are checked for their format only."""

import importlib.util
import os
import pathlib
import re
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("default_vs_torch",
                                               REPO / "benchmarks" / "default_vs_torch.py")
dvt = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(dvt)

ENTRY = re.compile(r"-|\d+\.\d{3} \(\d+(\.\d\d)? s, step \d+\)")


def rows(*items):
    return [{"step": str(s), "chars_per_sec": str(r), "val_loss": v} for s, r, v in items]


def test_training_clock_sums_each_window_at_its_rate():
    # 100 characters a step; rows every 10 steps, validation every 20; the last row (25) is
    # off both schedules, so its rate covers steps 21-25 (since the row of step 20)
    got = dvt.training_clock(rows((10, 1000, ""), (20, 500, "2.0"), (25, 250, "1.9")),
                             chars_per_step=100, log_every=10, eval_every=20)
    assert [c for _, c in got] == pytest.approx([1.0, 3.0, 5.0])


def test_training_clock_window_starts_at_the_last_restart():
    # rows 12 and 13 are both off schedule: 13's rate is over steps 11-13, not 13 alone
    got = dvt.training_clock(rows((10, 1000, ""), (12, 200, "2.0"), (13, 300, "")),
                             chars_per_step=100, log_every=10, eval_every=50)
    assert [c for _, c in got] == pytest.approx([1.0, 2.0, 2.0])


def test_value_at_is_the_last_validation_at_or_before_the_mark():
    points = [(30.0, 2.5, 250), (60.0, 2.0, 500), (90.0, 1.8, 750)]
    assert dvt.value_at(points, 29.9) is None
    assert dvt.value_at(points, 60.0) == (60.0, 2.0, 500)
    assert dvt.value_at(points, 89.0) == (60.0, 2.0, 500)
    assert dvt.value_at(points, 1e9) == (90.0, 1.8, 750)


def made_up():
    torch_out = {"minutes": 2, "torch": "2.x", "threads": 2, "steps": 900, "wall_s": 130.0,
                 "chars_per_sec": 19400.0,
                 "results": [{"mark": 1, "val_loss": 2.03, "step": 450, "clock_s": 60.1},
                             {"mark": 2, "val_loss": 1.79, "step": 900, "clock_s": 120.2},
                             {"mark": None, "val_loss": 1.79, "step": 900, "clock_s": 120.2}]}
    bptt_out = {"steps": 700, "wall_s": 140.0, "chars_per_sec": 13600.0, "stopped": True,
                "eval_every": 250, "points": [(42.0, 2.13, 250), (84.0, 1.9, 500)]}
    return torch_out, bptt_out


def test_table_on_made_up_results():
    torch_out, bptt_out = made_up()
    text = dvt.table([1, 2], "min", torch_out, bptt_out, "Some CPU", ["cmd a", "cmd b"],
                     [(2.0, 2.5), (1.75, 3.0)])
    lines = text.splitlines()
    assert lines[0] == "| validation loss at training clock | 1 min | 2 min | chars/s | steps " \
                       "| wall |"
    assert lines[1] == "|---|---|---|---|---|---|"
    assert lines[2] == ("| PyTorch reference | 2.030 (60 s, step 450) | 1.790 (120 s, step 900) "
                        "| 19.4k | 900 | 130 s |")
    assert lines[3] == ("| `bptt train` | 2.130 (42 s, step 250) | 1.900 (84 s, step 500) "
                        "| 13.6k | 700 | 140 s |")
    assert "CPU: Some CPU (`lscpu` model name)" in text
    assert "PyTorch 2.00 (2.50), bptt 1.75 (3.00)" in text and "stopped there by SIGTERM" in text
    assert "```\ncmd a\ncmd b\n```" in text
    curve = dvt.curves(torch_out, bptt_out)
    assert "PyTorch reference: 60 s 2.030, 120 s 1.790\n" in curve    # one validation per step
    assert "`bptt train`: 42 s 2.130, 84 s 1.900\n" in curve


def test_table_marks_without_a_validation_show_a_dash():
    torch_out, bptt_out = made_up()
    text = dvt.table([0.5, 1], "min", torch_out, bptt_out, "c", [], [(0, 0), (0, 0)])
    t_row, b_row = text.splitlines()[2:4]
    assert t_row.split(" | ")[1:3] == ["-", "2.030 (60 s, step 450)"]
    assert b_row.split(" | ")[1:3] == ["-", "2.130 (42 s, step 250)"]


def test_tiny_run_writes_the_table(tmp_path):
    pytest.importorskip("torch")
    out = tmp_path / "table.md"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH",
                                                                                 "")])}
    r = subprocess.run([sys.executable, str(REPO / "benchmarks" / "default_vs_torch.py"),
                        "--tiny", "--marks", "0.05", "0.5", "--minutes", "60", "--out", str(out)],
                       capture_output=True, text=True, cwd=tmp_path, timeout=120, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "| validation loss at training clock | 0.05 s | 0.5 s | chars/s | steps " \
                       "| wall |"
    for line, name in zip(lines[2:4], ["PyTorch reference", "`bptt train`"], strict=True):
        cells = line.strip("| ").split(" | ")
        assert cells[0] == name and len(cells) == 6
        assert all(ENTRY.fullmatch(c) for c in cells[1:3]), cells
        assert re.fullmatch(r"\d+\.\dk", cells[3]) and cells[4].isdigit(), cells
    assert int(lines[3].split(" | ")[4]) == 30      # bptt's tiny --steps: it ended by itself
    assert any(line.startswith("CPU: ") for line in lines)
    assert any(line.startswith("  + bptt train --hidden 16") for line in lines)
