"""Validation of the character model on the forward-only path (``evaluate`` inside
``no_grad()``) gives the number a recorded evaluation gives: the same batches, the same state
carried between them, the loss of the same logits (within the forward-only path's rounding,
``bptt.nn.inference``; in lines mode, whose batches have lengths and so run the packed path,
bit for bit)."""

import numpy as np
import pytest

import bptt
from bptt.text import lines
from bptt.text.data import StreamData, Vocab
from bptt.text.lm import CharLM, evaluating
from bptt.text.train import evaluate

TEXT = "the quick brown fox jumps over the lazy dog.\nhow vexingly quick daft zebras jump!\n" * 9


def recorded_evaluation(model, data):
    """``evaluate`` as it was before the forward-only path: every forward recorded."""
    total, count, state = 0.0, 0, None
    with evaluating(model):
        for x, y, lengths in data.validation():
            loss, state = model.loss(x, y, state if data.carries_state else None, lengths)
            n = y.size if lengths is None else int(np.sum(lengths))
            total, count = total + loss * n, count + n
    return total / count


def trained(model, data, steps=5):
    """A few Adam steps, so that the weights are not the initial ones."""
    opt = bptt.Adam(model.params, lr=1e-2)
    state = None
    for position in range(steps):
        x, y, lengths = data.batch(position % data.n_batches, np.arange(40))
        _, state = model.loss_and_grads(x, y, state if data.carries_state else None, lengths)
        opt.step(model.params, model.grads)
    return model


@pytest.mark.parametrize("dtype, rel", [(np.float32, 1e-6), (np.float64, 1e-13)])
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("batch", [3, 20])  # 20: the batched-matmul projection
def test_stream_validation_equals_the_recorded_one(cell, batch, dtype, rel):
    vocab = Vocab.from_text(TEXT)
    ids = vocab.encode(TEXT)
    data = StreamData(ids[:500], ids[500:], batch, 8)
    model = trained(CharLM(vocab.size, cell, hidden=12, layers=2, dtype=dtype, seed=0,
                           dropout=0.2), data)
    value = evaluate(model, data)
    assert model.training  # the mode it was in
    assert model.rnn._cache is None and len(model.head._calls) == 0  # nothing recorded
    assert value == pytest.approx(recorded_evaluation(model, data), rel=rel, abs=0)


def test_lines_validation_is_the_recorded_one():
    """Within float rounding: validation batches of lines sorted by length are often all of one
    length, which runs the forward-only path (bound in test_inference), not the packed one."""
    text_lines = [w for w in TEXT.replace("\n", " ").split(" ") if w] * 3
    vocab = lines.vocabulary(text_lines)
    data = lines.LineData.from_strings(text_lines[:40], text_lines[40:], vocab, 8)
    model = trained(CharLM(vocab.size, "lstm", hidden=12, layers=2, seed=0), data)
    want = recorded_evaluation(model, data)
    assert abs(evaluate(model, data) - want) <= 1e-6 * want
