"""Lines mode's pieces: reading lines, the seeded split, padded batches, epochs, the loss over
valid positions, sampling and the count of new samples."""

import numpy as np
import pytest

from bptt.text import lines
from bptt.text.data import CorpusError
from bptt.text.lines import END, LineData, pad, read_lines, split_lines, vocabulary
from bptt.text.lineset import from_strings
from bptt.text.lm import IGNORE, CharLM

WORDS = ["anna", "bob", "carl", "dé jà", "eve", "fay", "gus", "hal", "ivy", "jo", "kim", "lu"]


def test_read_lines_strips_skips_empty_and_keeps_inner_spaces():
    texts = [("a.txt", "anna\r\n\n  bob  \n\t\ndé jà"), ("b.txt", "eve\n")]
    assert read_lines(texts) == ["anna", "bob", "dé jà", "eve"]


def test_read_lines_errors_name_the_file_and_line():
    with pytest.raises(CorpusError, match=r"corpus a\.txt, b\.txt: no non-empty line"):
        read_lines([("a.txt", "\n \n"), ("b.txt", "")])
    long = "x" * (lines.MAX_LINE + 1)
    with pytest.raises(CorpusError, match=rf"corpus b\.txt: line 2 has {lines.MAX_LINE + 1} "
                                          rf"characters; --lines takes samples of at most "
                                          rf"{lines.MAX_LINE}"):
        read_lines([("a.txt", "ok\n"), ("b.txt", f"fine\n{long}\n")])
    assert read_lines([("a.txt", "y" * lines.MAX_LINE)]) == ["y" * lines.MAX_LINE]


def test_split_is_a_seeded_shuffle():
    train, val = split_lines(WORDS, 0.25, seed=3)
    order = np.random.default_rng(3).permutation(len(WORDS))     # the documented rule
    assert val == [WORDS[i] for i in order[:3]] and train == [WORDS[i] for i in order[3:]]
    assert split_lines(WORDS, 0.25, seed=3) == (train, val)
    assert split_lines(WORDS, 0.25, seed=4) != (train, val)
    assert len(split_lines(WORDS, 0.01, seed=0)[1]) == 1           # at least one held out
    with pytest.raises(CorpusError, match="too few"):
        split_lines(["only"], 0.1, seed=0)


def test_the_end_symbol_cannot_collide_with_a_sample():
    vocab = vocabulary(WORDS)
    assert END in vocab.chars and set(vocab.chars) == set("".join(WORDS)) | {END}
    got = read_lines([("f", "a\nb\r\nc\n")])
    assert all(END not in s for s in got)


def test_pad_layout():
    x, y, n = pad([np.array([5, 6, 7]), np.array([8])], end=0)
    assert n.tolist() == [4, 2]
    assert x.T.tolist() == [[0, 5, 6, 7], [0, 8, 0, 0]]              # END first, END padding
    assert y.T.tolist() == [[5, 6, 7, 0], [8, 0, IGNORE, IGNORE]]    # END last, then ignored


def test_an_epoch_reads_every_training_line_once_and_validation_every_held_out_line():
    vocab = vocabulary(WORDS)
    data = LineData.from_strings(WORDS[:10], WORDS[10:], vocab, batch=4)
    assert data.n_batches == 3 and not data.carries_state
    order = data.shuffle(np.random.default_rng(0))
    seen, position = [], 0
    while True:
        x, y, n = data.batch(position, order)
        assert x.shape == y.shape == (n.max(), len(n)) and len(n) <= 4
        seen += [vocab.decode(x[1: k, b]) for b, k in enumerate(n)]
        position = data.next(position)
        if position == 0:
            break
    assert sorted(seen) == sorted(WORDS[:10])
    held = [vocab.decode(x[1: k, b]) for x, _, n in data.validation() for b, k in enumerate(n)]
    assert sorted(held) == sorted(WORDS[10:])


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_loss_is_the_mean_over_valid_positions_of_separate_samples(cell):
    """A padded batch with lengths gives the mean nats per predicted symbol of the samples run
    one by one without padding; its gradients are the count-weighted mean of theirs."""
    vocab = vocabulary(WORDS)
    model = CharLM(vocab.size, cell, 8, 2, np.float64, seed=1)
    samples = [vocab.encode(s) for s in ("carl", "jo", "dé jà")]
    loss, _ = model.loss_and_grads(*_batch(samples, vocab))
    grads = {k: g.copy() for k, g in model.grads.items()}
    total, count, want = 0.0, 0, {k: 0.0 for k in grads}
    for s in samples:
        one, _ = model.loss_and_grads(*_batch([s], vocab))
        total, count = total + one * (len(s) + 1), count + len(s) + 1
        for k in want:
            want[k] = want[k] + model.grads[k] * (len(s) + 1)
    assert loss == pytest.approx(total / count, rel=1e-12)
    for k in grads:
        np.testing.assert_allclose(grads[k], want[k] / count, rtol=1e-9, atol=1e-12)


def _batch(samples, vocab):
    x, y, n = pad(samples, int(vocab.encode(END)[0]))
    return x, y, None, n


def test_sample_lines_seeded_primed_and_capped():
    vocab = vocabulary(WORDS)
    model = CharLM(vocab.size, "lstm", 8, 1, seed=0)
    a = lines.sample_lines(model, vocab, 6, 5, rng=np.random.default_rng(1))
    b = lines.sample_lines(model, vocab, 6, 5, rng=np.random.default_rng(1))
    c = lines.sample_lines(model, vocab, 6, 5, rng=np.random.default_rng(2))
    assert a == b != c and len(a) == 6 and all(len(s) <= 5 and END not in s for s in a)
    primed = lines.sample_lines(model, vocab, 4, 3, prime="jo", rng=np.random.default_rng(1))
    assert all(s.startswith("jo") and len(s) <= 5 for s in primed)
    greedy = lines.sample_lines(model, vocab, 3, 4, temperature=0)
    assert len(set(greedy)) == 1                 # the same most likely symbols for each
    with pytest.raises(ValueError, match="--prime"):
        lines.sample_lines(model, vocab, 1, 3, prime="a\nb")
    with pytest.raises(ValueError, match="--count"):
        lines.sample_lines(model, vocab, 0, 3)


def test_sample_lines_ends_at_the_end_symbol():
    vocab = vocabulary(["ab"])
    model = CharLM(vocab.size, "rnn", 4, 1, np.float64, seed=0)
    end, b = vocab.encode(END)[0], vocab.encode("b")[0]
    model.head.params["weight"][...] = 0
    model.head.params["bias"][...] = -50
    model.head.params["bias"][b] = 0             # "b" almost surely
    assert lines.sample_lines(model, vocab, 2, 7, rng=np.random.default_rng(0)) == ["b" * 7] * 2
    model.head.params["bias"][end] = 50          # END at once: empty samples
    assert lines.sample_lines(model, vocab, 2, 7, prime="a") == ["a", "a"]


def test_count_new():
    seen = lines.line_hashes(["anna", "bob", "dé jà"])
    assert seen.dtype == np.uint64 and list(seen) == sorted(seen)
    assert lines.count_new(["anna", "ann", "dé jà", "dé ja", "bob"], seen) == 2
    assert lines.count_new([], seen) == 0


def reference_pad(samples, end):
    """The padding of lines mode written as a loop over the samples (the code before issue 23)."""
    lengths = np.array([len(s) + 1 for s in samples], dtype=np.int64)
    T, B = int(lengths.max()), len(samples)
    x = np.full((T, B), end, dtype=np.int64)
    y = np.full((T, B), IGNORE, dtype=np.int64)
    for b, s in enumerate(samples):
        x[1: len(s) + 1, b] = s
        y[: len(s), b] = s
        y[len(s), b] = end
    return x, y, lengths


def test_batches_and_validation_loss_are_those_of_the_list_of_lines():
    """The arrays give the batches the list of encoded lines gave (same epoch order, same
    padding), and the validation loss of the old batching (256 lines sorted by length)."""
    rng = np.random.default_rng(0)
    words = ["".join(rng.choice(list("abcdé "), size=rng.integers(1, 40))) for _ in range(700)]
    train, val = split_lines(words, 0.3, seed=1)
    vocab = vocabulary(words)
    end = int(vocab.encode(END)[0])
    data = LineData.from_strings(train, val, vocab, batch=5)
    order = data.shuffle(np.random.default_rng(2))
    assert (order == np.random.default_rng(2).permutation(len(train))).all()
    for position in (0, 1, data.n_batches - 1):
        rows = order[position * 5: (position + 1) * 5]
        want = reference_pad([vocab.encode(train[i]) for i in rows], end)
        for a, b in zip(data.batch(position, order), want, strict=True):
            assert a.dtype == b.dtype and np.array_equal(a, b)
    model = CharLM(vocab.size, "gru", 8, 1, np.float64, seed=0)

    def mean_loss(batches):
        total = count = 0
        for x, y, n in batches:
            loss, _ = model.loss(x, y, None, n)
            total, count = total + loss * n.sum(), count + n.sum()
        return total / count

    old = sorted((vocab.encode(s) for s in val), key=len)
    before = mean_loss(reference_pad(old[i: i + 256], end) for i in range(0, len(old), 256))
    batches = list(data.validation())
    assert mean_loss(batches) == pytest.approx(before, rel=1e-12)
    cap = max(lines.EVAL_SYMBOLS, 5 * (max(map(len, words)) + 1))
    assert len(batches) > 1 and all(x.size <= cap for x, _, _ in batches)
    assert sorted(vocab.decode(x[1: k, b]) for x, _, n in batches
                  for b, k in enumerate(n)) == sorted(val)


def test_line_data_holds_a_few_bytes_per_line():
    """No Python object per line: ids (one byte a symbol here), offsets and the split's two
    index arrays (8 bytes a line each)."""
    rng = np.random.default_rng(0)
    words = ["".join(rng.choice(list("abcdefgh"), size=rng.integers(4, 31)))
             for _ in range(20_000)]
    train, val = split_lines(words, 0.1, seed=0)
    data = LineData.from_strings(train, val, vocabulary(words), batch=32)
    held = sum(a.nbytes for a in (data.ids, data.starts, data.train, data.val))
    n_symbols = sum(map(len, words))
    assert data.ids.dtype == np.uint8
    assert held <= n_symbols + 8 * (len(words) + 1) + 8 * len(train) + 8 * len(val)
    assert len(data.val_cuts) < len(val) / 10            # a cut per validation batch


def test_read_line_files_is_read_lines(tmp_path):
    """The array reader and the string rule agree: BOM, CRLF, CR, blank lines, inner and
    surrounding (Unicode) whitespace, wide characters."""
    text = "\ufeff anna \r\n\r\n\u3000bob\u00a0\rdé jà\n\t\n日本\u2028x\n last"
    f = tmp_path / "a.txt"
    f.write_bytes(text.encode("utf-8"))
    got = lines.read_line_files([str(f)])
    assert got.strings() == read_lines([("a.txt", text)]) == ["anna", "bob", "dé jà",
                                                              "日本\u2028x", "last"]
    assert got.read == 7 and got.n_chars == len(lines.clean_text(text))
    with pytest.raises(CorpusError, match=r"line 3 has 257 characters"):
        f.write_text("a\n\n" + "b" * 257)
        lines.read_line_files([str(f)])


def test_hashes_of_arrays_equal_hashes_of_strings():
    words = ["anna", "bob", "dé jà", "日本", "a" * 256]
    ls = from_strings(words)
    assert np.array_equal(np.sort(ls.hashes()), lines.line_hashes(words))
    assert len(set(lines.line_hashes(words + ["ab", "ba", "abb", "aab"]))) == 9
    old = lines.line_hashes(["anna"], lines.BLAKE)
    assert lines.count_new(["anna", "ann"], old, lines.BLAKE) == 1
    assert lines.count_new(["anna", "ann"], old) == 2          # another hash: all look new


def test_held_out_lines_are_the_runs_split(tmp_path):
    """What bptt inspect reads: the held-out lines of a run's config, as the split made them."""
    from bptt.text.config import Config
    text = "\ufeff" + "\r\n".join(WORDS * 3) + "\r\n"
    (tmp_path / "w.txt").write_text(text, encoding="utf-8")
    cfg = Config(corpus=[str(tmp_path / "w.txt")], lines=True, val_fraction=0.2, seed=4)
    want = split_lines(read_lines([("w.txt", text)]), 0.2, 4)[1]
    assert lines.held_out_lines(cfg) == want and len(want) == 7
