"""The package layout: every public name the README shows imports from ``bptt``, and each
subfolder of ``bptt/`` imports only from the folders below it."""

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "bptt"
# Lowest first: a module in a folder may import from its own folder and from the ones before it.
FLOORS = ["cells", "nn", "text", "tools"]
SHARED = {"_checks"}  # top-level helpers every part may use


def readme_public_names() -> set[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    names = set(re.findall(r"\bbptt\.([A-Za-z_][A-Za-z0-9_]*)", text))
    return {n for n in names if n[0].isupper() or n in {"stepwise", "convert", "gradcheck"}}


def test_readme_names_import_from_the_package():
    import bptt

    names = readme_public_names() | {"cross_entropy", "cross_entropy_backward", "clip_grad_norm",
                                     "check_layer", "Linear", "Adam"}
    assert {"RNN", "LSTM", "GRU", "stepwise"} <= names
    for name in sorted(names):
        assert hasattr(bptt, name), f"bptt.{name} is shown in the README but not importable"
        assert name in bptt.__all__, name


@pytest.mark.parametrize("args", [["-m", "bptt", "--help"], ["-c", "from bptt.cli import main"]])
def test_entry_points_start(args):
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def imported_parts(path: Path) -> set[str]:
    """The parts of bptt (a folder name, or a top-level module) a module imports."""
    module = path.relative_to(ROOT).with_suffix("").parts  # ('bptt', 'nn', 'layers')
    parts = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(module[: len(module) - node.level])
                target = base + (node.module.split(".") if node.module else [])
                targets = [target] if node.module else [base + [a.name] for a in node.names]
            elif node.module and node.module.split(".")[0] == "bptt":
                targets = [node.module.split(".")]
            else:
                continue
        elif isinstance(node, ast.Import):
            targets = [a.name.split(".") for a in node.names if a.name.split(".")[0] == "bptt"]
        else:
            continue
        parts |= {t[1] for t in targets if len(t) > 1}
    return parts


@pytest.mark.parametrize("folder", FLOORS)
def test_each_folder_imports_only_from_folders_below(folder):
    allowed = set(FLOORS[: FLOORS.index(folder) + 1]) | SHARED
    for path in sorted((PACKAGE / folder).glob("*.py")):
        bad = imported_parts(path) - allowed
        where = path.relative_to(ROOT)
        assert not bad, f"{where} imports {sorted(bad)} (allowed: {sorted(allowed)})"


def test_top_level_holds_only_public_modules():
    top = {p.stem for p in PACKAGE.glob("*.py")}
    assert top == {"__init__", "__main__", "cli", "convert", "gradcheck", "_checks"}
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert folders == set(FLOORS) | {"corpus", "stepwise"}  # stepwise: the public course API
