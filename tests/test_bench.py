"""`bptt bench` runs and prints a well-formed table; the naive reference loop is itself exact."""

import argparse
import json
import subprocess
import sys

import numpy as np
import pytest
from fd import rel_error

import bptt
from bptt.tools import naive


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_naive_loop_equals_engine(kind):
    layer = getattr(bptt, kind)(5, 6, dtype=np.float64, seed=0)
    rng = np.random.default_rng(0)
    x, dout = rng.normal(size=(4, 3, 5)), rng.normal(size=(4, 3, 6))
    out, _ = layer(x)
    dx, _ = layer.backward(dout)
    ndx, ngrads = naive.STEPS[kind](layer.params, x, dout)
    assert rel_error(ndx, dx) < 1e-12
    for name, g in layer.grads.items():
        assert rel_error(ngrads[name], g) < 1e-12, name


def test_bench_prints_a_table_and_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    cmd = [
        sys.executable,
        "-m",
        "bptt",
        "bench",
        "--cell",
        "lstm",
        "gru",
        "--hidden",
        "8",
        "--batch",
        "1",
        "2",
        "--seq-len",
        "3",
        "--repeat",
        "2",
        "--dtype",
        "float32",
        "float64",
        "--json",
        str(out),
    ]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.strip().splitlines()
    header, rule, rows = lines[0], lines[1], lines[2:]
    assert header.split()[:4] == ["cell", "dtype", "B", "H"] and set(rule) == {"-"}
    assert len(rows) == 2 * 2 * 2  # dtypes x cells x batches
    for row in rows:
        fields = row.split()
        assert fields[0] in ("LSTM", "GRU") and fields[1] in ("float32", "float64")
        assert float(fields[5]) > 0  # bptt ms
        assert len(fields) == 4 + 1 + 4 * 2 + 1 + 2 + 1 + 3  # 4 timings: "ms (min-max)"
    assert "threads" in run.stderr
    results = json.loads(out.read_text())
    assert len(results) == len(rows)
    for r in results:
        assert r["ms"]["bptt"] > 0 and r["ms"]["naive"] > 0 and r["ms"]["gemm"] > 0
        assert r["ratio_naive"] == pytest.approx(r["ms"]["bptt"] / r["ms"]["naive"])


def test_bench_rejects_bad_sizes():
    run = subprocess.run(
        [sys.executable, "-m", "bptt", "bench", "--hidden", "0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode != 0
    assert "--hidden" in run.stderr and "Traceback" not in run.stderr


def test_bench_ragged_compares_packed_padded_and_torch(tmp_path):
    out = tmp_path / "ragged.json"
    cmd = [sys.executable, "-m", "bptt", "bench", "--ragged", "--cell", "gru", "--hidden", "8",
           "--batch", "5", "--seq-len", "8", "--repeat", "1", "--no-memory", "--json", str(out)]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    header, _, row = run.stdout.strip().splitlines()
    assert "padded ms" in header and "valid" in header and "naive" not in header
    [r] = json.loads(out.read_text())
    assert set(r["ms"]) >= {"bptt", "padded"} and r["ratio_padded"] > 0
    lengths = np.array(r["lengths"])
    assert lengths.shape == (5,) and lengths.min() >= 2 and lengths.max() <= 8
    assert r["valid"] == pytest.approx(lengths.sum() / 40)
    assert float(row.split("|")[1].split()[-1]) == pytest.approx(r["valid"], abs=0.0051)


def test_long_sets_the_long_sequence_defaults_and_keeps_given_sizes():
    from bptt.tools import bench

    def sizes(*argv):
        p = argparse.ArgumentParser()
        bench.add_arguments(p)
        args = p.parse_args(argv)
        bench.resolve_sizes(args)
        return args.seq_len, args.batch, args.hidden, args.input_size

    assert sizes("--long") == (5000, [1], [16], 16)
    assert sizes("--long", "--hidden", "32", "--seq-len", "100") == (100, [1], [32], 16)
    assert sizes() == (64, [1, 32], [64, 256, 512], 65)


def test_bench_long_rows_compare_engine_and_torch_at_batch_1(tmp_path):
    out = tmp_path / "long.json"
    cmd = [sys.executable, "-m", "bptt", "bench", "--long", "--seq-len", "30", "--repeat", "1",
           "--no-memory", "--no-naive", "--no-gemm", "--json", str(out)]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "T=30" in run.stderr and "input size 16" in run.stderr
    header, rule, *rows = run.stdout.strip().splitlines()
    assert header.split()[:4] == ["cell", "dtype", "B", "H"] and set(rule) == {"-"}
    assert [r.split()[:4] for r in rows] == [[c, "float32", "1", "16"] for c in
                                             ("LSTM", "GRU", "RNN")]
    results = json.loads(out.read_text())
    assert [r["cell"] for r in results] == ["LSTM", "GRU", "RNN"]
    for r in results:
        assert (r["seq_len"], r["batch"], r["hidden"], r["input_size"]) == (30, 1, 16, 16)
        assert r["ms"]["bptt"] > 0 and "naive" not in r["ms"]
        if "torch" in r["ms"]:
            assert r["ratio_torch"] == pytest.approx(r["ms"]["bptt"] / r["ms"]["torch"])
