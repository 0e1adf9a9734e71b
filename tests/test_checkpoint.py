"""Checkpoint files: round trip, atomic writes, and every way a file can be wrong."""

import json
import os
import pickle
import zipfile

import numpy as np
import pytest

from bptt import Adam
from bptt.text import checkpoint as ckpt
from bptt.text.checkpoint import CheckpointError

META = {"vocab": "aé日🙂\n", "step": 7, "rng": np.random.default_rng(5).bit_generator.state,
        "loss_sum": 0.1 + 0.2}


def arrays():
    rng = np.random.default_rng(0)
    return {"param/w": rng.standard_normal((3, 4)).astype(np.float32),
            "state/0": rng.standard_normal((2, 1, 4))}


def test_round_trip_exact(tmp_path):
    path = str(tmp_path / "c.npz")
    ckpt.save(path, arrays(), META)
    got, meta = ckpt.load(path)
    want = arrays()
    assert sorted(got) == sorted(want)
    for k in want:
        assert got[k].dtype == want[k].dtype and np.array_equal(got[k], want[k])
    assert meta["format"] == ckpt.FORMAT and meta["version"] == ckpt.VERSION
    assert {k: meta[k] for k in META} == META            # ints, floats, unicode exactly
    rng = np.random.default_rng()
    rng.bit_generator.state = meta["rng"]
    assert rng.random() == np.random.default_rng(5).random()
    assert [f for f in os.listdir(tmp_path)] == ["c.npz"]   # no temp file left


def test_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = str(tmp_path / "c.npz")
    ckpt.save(path, arrays(), META)
    before = open(path, "rb").read()

    def broken(fh, **kw):
        fh.write(b"PK\x03\x04 partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken)
    with pytest.raises(OSError, match="disk full"):
        ckpt.save(path, arrays(), {"step": 8})
    assert open(path, "rb").read() == before
    assert os.listdir(tmp_path) == ["c.npz"]


def test_adam_state_round_trip_continues_exactly(tmp_path):
    rng = np.random.default_rng(1)
    p1 = {"w": rng.standard_normal(5), "b": rng.standard_normal(2)}
    p2 = {k: v.copy() for k, v in p1.items()}
    grads = [{k: rng.standard_normal(v.shape) for k, v in p1.items()} for _ in range(6)]
    a = Adam(p1, lr=0.01)
    for g in grads[:3]:
        a.step(p1, g)
    path = str(tmp_path / "c.npz")
    ckpt.save(path, {**ckpt.optimizer_arrays(a), **{f"param/{k}": v for k, v in p1.items()}},
              {"adam_t": a.t})
    got, meta = ckpt.load(path)
    b = Adam(p2, lr=0.01)
    p2 = ckpt.prefixed(got, "param")
    ckpt.load_optimizer(b, got, meta["adam_t"])
    for g in grads[3:]:
        a.step(p1, g)
        b.step(p2, g)
    for k in p1:
        assert np.array_equal(p1[k], p2[k])
    with pytest.raises(CheckpointError, match="adam_m/w"):
        ckpt.load_optimizer(Adam({"w": np.zeros(4)}), got, 3)


def corrupt(path, how):
    raw = open(path, "rb").read()
    if how == "truncated":
        open(path, "wb").write(raw[: len(raw) // 2])
    elif how == "flipped":                             # damage the array bytes in the middle
        mid = bytearray(raw)
        for i in range(len(raw) // 3, len(raw) // 3 + 16):
            mid[i] ^= 0xFF
        open(path, "wb").write(bytes(mid))
    elif how == "empty":
        open(path, "wb").close()
    elif how == "text":
        open(path, "w").write("hello, not a checkpoint\n")
    elif how == "pickle":
        open(path, "wb").write(pickle.dumps({"param/w": np.zeros(3)}))
    elif how == "pickled_array":
        np.savez(path, __meta__=np.array(json.dumps({"format": ckpt.FORMAT, "version": 1})),
                 obj=np.array([{"a": 1}], dtype=object))
    elif how == "foreign_npz":
        np.savez(path, weights=np.zeros(3))
    elif how == "foreign_meta":
        np.savez(path, __meta__=np.array(json.dumps({"format": "other-program", "version": 1})))
    elif how == "bad_json":
        np.savez(path, __meta__=np.array("{not json"))
    elif how == "newer":
        np.savez(path, __meta__=np.array(json.dumps({"format": ckpt.FORMAT, "version": 99})))
    elif how == "deep_json":                           # json.loads: RecursionError
        np.savez(path, __meta__=np.array("[" * 100_000 + "]" * 100_000))
    elif how == "zip_bomb":                            # 20 MB of zeros, deflated to ~20 KB
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("__meta__.npy", b"")
            z.writestr("param/w.npy", bytes(20_000_000))
    elif how == "plain_zip":
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("readme.txt", "hi")


@pytest.mark.parametrize("how", ["truncated", "flipped", "empty", "text", "pickle",
                                 "pickled_array", "foreign_npz", "foreign_meta", "bad_json",
                                 "newer", "plain_zip", "deep_json", "zip_bomb"])
def test_bad_files_raise_checkpoint_error(tmp_path, how, monkeypatch):
    path = str(tmp_path / "c.npz")
    ckpt.save(path, arrays(), META)
    corrupt(path, how)
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: pytest.fail("unpickled"))
    with pytest.raises(CheckpointError) as err:
        ckpt.load(path)
    msg = str(err.value)
    assert path in msg and "\n" not in msg
    if how in ("pickle", "pickled_array"):
        assert "pickle" in msg
    if how == "newer":
        assert "newer" in msg
    if how == "zip_bomb":
        assert "unpack to 20000000 bytes" in msg


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        ckpt.load(str(tmp_path / "nope.npz"))


def test_files_get_ordinary_permissions(tmp_path):
    path = str(tmp_path / "c.npz")
    ckpt.save(path, arrays(), META)
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask
