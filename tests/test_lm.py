"""The character model: gradients (finite differences, torch), truncated BPTT, sampling."""

import warnings

import numpy as np
import pytest
from fd import numerical_grad, rel_error

from bptt.text.data import Vocab
from bptt.text.lm import CharLM, next_distribution, sample

CELLS = ["lstm", "gru", "rnn"]


def tiny(cell="lstm", dtype=np.float64, V=5, H=3, layers=2, seed=0):
    return CharLM(V, cell, hidden=H, layers=layers, dtype=dtype, seed=seed)


def chunk(V=5, T=4, B=2, seed=1):
    rng = np.random.default_rng(seed)
    return rng.integers(0, V, (T, B)), rng.integers(0, V, (T, B))


def random_state(model, B, seed=2):
    rng = np.random.default_rng(seed)
    shape = (model.rnn.num_layers, B, model.rnn.hidden_size)
    h = rng.standard_normal(shape) * 0.5
    return (h, rng.standard_normal(shape) * 0.5) if model.cell == "lstm" else h


@pytest.mark.parametrize("cell", CELLS)
def test_grads_match_finite_differences_with_carried_state(cell):
    model = tiny(cell)
    x, y = chunk()
    state = random_state(model, B=2)
    loss, _ = model.loss_and_grads(x, y, state)
    grads = {k: g.copy() for k, g in model.grads.items()}
    assert sorted(grads) == sorted(model.params)
    assert abs(loss - model.loss(x, y, state)[0]) < 1e-12
    for name, p in model.params.items():
        num = numerical_grad(lambda: model.loss(x, y, state)[0], p)
        assert rel_error(grads[name], num) < 1e-6, name


def test_carried_state_is_used_and_returned_detached():
    model = tiny("lstm")
    x, y = chunk()
    state = random_state(model, B=2)
    l0, s0 = model.loss(x, y, None)
    l1, s1 = model.loss(x, y, state)
    assert l0 != l1
    _, s2 = model.loss_and_grads(x, y, state)
    for a, b in zip(s1, s2, strict=True):
        assert np.array_equal(a, b)
    h_before = s2[0].copy()
    model.loss_and_grads(x, y, s2)                 # the next chunk does not change it
    assert np.array_equal(s2[0], h_before)


@pytest.mark.parametrize("cell", CELLS)
def test_loss_and_grads_match_torch(cell):
    torch = pytest.importorskip("torch")
    V, H, L, T, B = 6, 4, 2, 5, 3
    model = tiny(cell, V=V, H=H, layers=L, seed=3)
    kind = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cell]
    rnn, head = kind(V, H, num_layers=L).double(), torch.nn.Linear(H, V).double()
    with torch.no_grad():
        for name, p in rnn.named_parameters():
            p.copy_(torch.tensor(model.params["rnn." + name]))
        for name, p in head.named_parameters():
            p.copy_(torch.tensor(model.params["head." + name]))
    x, y = chunk(V, T, B, seed=4)
    state = random_state(model, B)
    loss, final = model.loss_and_grads(x, y, state)
    X = torch.nn.functional.one_hot(torch.tensor(x), V).double()
    tstate = tuple(torch.tensor(s) for s in state) if cell == "lstm" else torch.tensor(state)
    out, tfinal = rnn(X, tstate)
    tloss = torch.nn.functional.cross_entropy(head(out).reshape(-1, V), torch.tensor(y).reshape(-1))
    tloss.backward()
    assert abs(loss - tloss.item()) < 1e-12
    for name, p in list(rnn.named_parameters()):
        assert rel_error(model.grads["rnn." + name], p.grad.numpy()) < 1e-9, name
    for name, p in head.named_parameters():
        assert rel_error(model.grads["head." + name], p.grad.numpy()) < 1e-9, name
    finals = zip(final, tfinal, strict=True) if cell == "lstm" else [(final, tfinal)]
    for a, b in finals:
        assert rel_error(a, b.detach().numpy()) < 1e-12


def test_float32_stays_float32():
    model = tiny("gru", dtype=np.float32)
    x, y = chunk()
    loss, state = model.loss_and_grads(x, y, None)
    assert np.isfinite(loss) and state.dtype == np.float32
    assert all(g.dtype == np.float32 for g in model.grads.values())


def test_state_dict_round_trip_and_errors():
    a, b = tiny(seed=1), tiny(seed=2)
    b.load_state_dict(a.state_dict())
    x, y = chunk()
    assert a.loss(x, y)[0] == b.loss(x, y)[0]
    bad = a.state_dict()
    bad["head.bias"] = np.zeros(9)
    before = b.state_dict()
    with pytest.raises(ValueError, match="head.bias"):
        b.load_state_dict(bad)
    assert all(np.array_equal(before[k], b.params[k]) for k in before)
    with pytest.raises(ValueError, match="cell"):
        CharLM(5, "transformer")


# ------------------------------------------------------------------------------ sampling

TEXT = "naïve café 日本語 🙂🎉 abc\n"


@pytest.fixture(scope="module")
def vocab_model():
    vocab = Vocab.from_text(TEXT)
    return vocab, CharLM(vocab.size, "lstm", hidden=8, layers=1, seed=5)


def test_same_seed_same_text_and_every_char_allowed(vocab_model):
    vocab, model = vocab_model
    a = sample(model, vocab, 200, rng=np.random.default_rng(7))
    b = sample(model, vocab, 200, rng=np.random.default_rng(7))
    c = sample(model, vocab, 200, rng=np.random.default_rng(8))
    assert a == b and a != c and len(a) == 200
    assert set(a) <= set(vocab.chars)
    assert len(set(a)) > vocab.size // 2             # an untrained model spreads over the vocab


def test_prime_greedy_and_top_k(vocab_model):
    vocab, model = vocab_model
    g1 = sample(model, vocab, 30, temperature=0, prime="日本", rng=np.random.default_rng(1))
    g2 = sample(model, vocab, 30, temperature=0, prime="日本", rng=np.random.default_rng(2))
    assert g1 == g2 and g1.startswith("日本") and len(g1) == 32
    k1 = sample(model, vocab, 30, top_k=1, prime="日本", rng=np.random.default_rng(3))
    assert k1 == g1                                   # top-1 sampling is greedy
    ids = vocab.encode("日本")[:, None]                # greedy's first char is the argmax
    logits, _ = model.forward(ids)
    assert g1[2] == vocab.chars[int(np.argmax(logits[-1]))]


def test_bad_sampling_options(vocab_model):
    vocab, model = vocab_model
    with pytest.raises(ValueError, match="U\\+0058"):
        sample(model, vocab, 5, prime="X")
    with pytest.raises(ValueError, match="--temperature"):
        sample(model, vocab, 5, temperature=-0.5)
    with pytest.raises(ValueError, match="--top-k"):
        sample(model, vocab, 5, top_k=0)
    with pytest.raises(ValueError, match="--length"):
        sample(model, vocab, 0)


def test_next_distribution():
    z = np.array([1.0, 3.0, 2.0, -1.0])
    p = next_distribution(z, 1.0, None)
    assert abs(p.sum() - 1) < 1e-12 and np.allclose(p, np.exp(z) / np.exp(z).sum())
    p2 = next_distribution(z, 1.0, 2)
    assert p2[0] == 0 and p2[3] == 0 and abs(p2[1] / p2[2] - np.e) < 1e-12
    cold, hot = next_distribution(z, 0.1, None), next_distribution(z, 10.0, None)
    assert cold.max() > p.max() > hot.max()
    assert np.array_equal(next_distribution(z, 0, None), [0, 1, 0, 0])


def test_tiny_temperature_is_greedy_without_warnings(vocab_model):
    z = np.array([1.0, 3.0, 2.0, -1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")                   # no overflow warning on stderr
        for t in (1e-310, 5e-324):                       # z / t overflows to inf
            assert np.array_equal(next_distribution(z, t, None), [0, 1, 0, 0])
            assert np.array_equal(next_distribution(z, t, 2), [0, 1, 0, 0])
        vocab, model = vocab_model
        tiny = sample(model, vocab, 30, temperature=1e-310, rng=np.random.default_rng(1))
    assert tiny == sample(model, vocab, 30, temperature=0, rng=np.random.default_rng(2))


def test_diverged_parameters_raise_floating_point_error():
    model = CharLM(5, "lstm", hidden=4, layers=1, seed=0)
    model.params["rnn.bias_ih_l0"][...] = np.inf                  # as after an Adam overflow
    model.params["rnn.bias_hh_l0"][...] = -np.inf
    x = np.zeros((3, 2), dtype=np.int64)
    with np.errstate(invalid="ignore"), pytest.raises(FloatingPointError, match="NaN or inf"):
        model.loss(x, x)
    with np.errstate(invalid="ignore"), pytest.raises(FloatingPointError, match="NaN or inf"):
        model.loss_and_grads(x, x)
