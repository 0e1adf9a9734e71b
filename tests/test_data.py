"""Corpus reading, vocabulary, split and char-rnn batches with a resumable position."""

import numpy as np
import pytest

from bptt.text import data
from bptt.text.data import Batches, CorpusError, Vocab


def write(path, text, encoding="utf-8"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return path


def test_folders_recursive_sorted_files_in_given_order(tmp_path):
    write(tmp_path / "d" / "b.txt", "B")
    write(tmp_path / "d" / "a.txt", "A")
    write(tmp_path / "d" / "sub" / "c.txt", "C")
    write(tmp_path / "d" / ".hidden", "H")
    write(tmp_path / "z.txt", "Z")
    assert data.read_corpus([str(tmp_path / "z.txt"), str(tmp_path / "d")]) == "ZABC"
    assert data.corpus_name([str(tmp_path / "d") + "/"]) == "d"
    assert data.corpus_name([str(tmp_path / "z.txt")]) == "z"
    assert data.corpus_name([]) == "tinyshakespeare"


def test_corpus_name_of_dot_and_dotdot_is_the_folder_name(tmp_path, monkeypatch):
    (tmp_path / "texts" / "sub").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "texts" / "sub")
    assert data.corpus_name(["."]) == "sub"
    assert data.corpus_name([".."]) == "texts"
    assert data.corpus_name(["../"]) == "texts"


def test_builtin_corpus_is_tiny_shakespeare():
    text = data.read_corpus([])
    assert len(text) == 1115394 and len(set(text)) == 65
    assert text.startswith("First Citizen:")


@pytest.mark.parametrize("case", ["missing", "empty_file", "empty_folder", "undecodable"])
def test_bad_corpus_errors_name_the_file(tmp_path, case):
    path = tmp_path / "c.txt"
    if case == "empty_file":
        write(path, "")
    elif case == "empty_folder":
        path = tmp_path / "folder"
        path.mkdir()
    elif case == "undecodable":
        write(path, b"good text \xff\xfe more")
    with pytest.raises(CorpusError) as err:
        data.read_corpus([str(path)])
    assert str(path) in str(err.value)
    if case == "undecodable":
        assert "UTF-8" in str(err.value) and "offset 10" in str(err.value)


def test_vocab_any_characters_round_trip():
    text = "Héllo, wörld! 日本語 🙂🎉 ça\n\t"
    v = Vocab.from_text(text)
    assert list(v.chars) == sorted(set(text)) and v.size == len(set(text))
    ids = v.encode(text)
    assert ids.dtype == np.int64 and ids.min() >= 0 and ids.max() < v.size
    assert v.decode(ids) == text
    assert v.chars[v.encode("🙂")[0]] == "🙂"
    with pytest.raises(ValueError, match="U\\+0078"):
        v.encode("x")
    assert v.missing("Hxyx🙂") == "xy"
    with pytest.raises(ValueError):
        Vocab("ba")
    with pytest.raises(TypeError, match="chars"):
        Vocab(list("ab"))                               # e.g. from a hand-edited checkpoint


def test_split_last_fraction_is_validation():
    ids = np.arange(100)
    tr, va = data.split(ids, 0.1)
    assert np.array_equal(tr, np.arange(90)) and np.array_equal(va, np.arange(90, 100))
    tr, va = data.split(np.arange(5), 0.01)
    assert len(va) == 1 and len(tr) == 4


def test_batches_streams_continue_and_wrap():
    ids = np.arange(1000)
    b = Batches(ids, batch=4, seq_len=10)
    stream = (1000 - 1) // 4
    assert b.n_chunks == stream // 10
    rows = [b.get(p) for p in range(b.n_chunks)]
    x = np.concatenate([r[0] for r in rows])          # (n_chunks*T, B)
    y = np.concatenate([r[1] for r in rows])
    for s in range(4):                                # row s reads stream s in order, y = x + 1
        assert np.array_equal(x[:, s], ids[s * stream: s * stream + len(x)])
        assert np.array_equal(y[:, s], x[:, s] + 1)
    assert b.next_position(b.n_chunks - 1) == 0 and b.next_position(3) == 4
    assert np.array_equal(Batches(ids, 4, 10).get(5)[0], b.get(5)[0])
    with pytest.raises(ValueError):
        b.get(b.n_chunks)


def test_batches_too_small_text_is_a_corpus_error():
    with pytest.raises(CorpusError, match="--batch"):
        Batches(np.arange(50), batch=8, seq_len=10)


def test_eval_chunks_cover_every_stream_once():
    ids = np.arange(103)
    chunks = list(data.eval_chunks(ids, batch=4, seq_len=8))
    x = np.concatenate([c[0] for c in chunks])
    y = np.concatenate([c[1] for c in chunks])
    assert x.shape == (25, 4) and chunks[-1][0].shape == (1, 4)
    assert np.array_equal(x.T.reshape(-1), ids[:100]) and np.array_equal(y, x + 1)
    assert list(data.eval_chunks(np.arange(3), batch=8, seq_len=4))[0][0].shape == (1, 2)
    with pytest.raises(CorpusError, match="--val-fraction"):
        data.eval_chunks(np.arange(1), batch=4, seq_len=8)        # raised before iterating
