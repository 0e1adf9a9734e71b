"""Lines mode's pieces: reading lines, the seeded split, padded batches, epochs, the loss over
valid positions, sampling and the count of new samples."""

import numpy as np
import pytest

from bptt.text import lines
from bptt.text.data import CorpusError
from bptt.text.lines import END, LineData, pad, read_lines, split_lines, vocabulary
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
