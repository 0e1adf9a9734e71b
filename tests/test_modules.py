"""Models from parts (issue 21): Module, Parameter, tying, reuse inside one forward, SGD and
Adam on parameters, clipping, against torch where torch has the same thing."""

import pickle

import numpy as np
import pytest

import bptt

torch = pytest.importorskip("torch")

TOL = {np.float64: 1e-10, np.float32: 1e-5}
V, E, H = 11, 6, 6


def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-12))


class WordLM(bptt.Module):
    """Embedding -> Dropout -> 2-layer LSTM -> Dropout -> Linear, the decoder tied to the
    encoder (torch's word-language-model example, in bptt)."""

    def __init__(self, dtype, p=0.0):
        super().__init__()
        self.drop = bptt.Dropout(p, seed=0)
        self.encoder = bptt.Embedding(V, E, dtype=dtype, seed=1)
        self.rnn = bptt.LSTM(E, H, 2, dtype=dtype, seed=2)
        self.decoder = bptt.Linear(H, V, dtype=dtype, seed=3)
        self.decoder.weight = self.encoder.weight

    def forward(self, ids, state=None):
        emb = self.drop(self.encoder(ids))
        out, state = self.rnn(emb, state)
        return self.decoder(self.drop(out)), state

    def backward(self, dlogits):
        dout = self.drop.backward(self.decoder.backward(dlogits))
        demb, _ = self.rnn.backward(dout)
        self.encoder.backward(self.drop.backward(demb))


class TorchWordLM(torch.nn.Module):
    def __init__(self, dtype):
        super().__init__()
        self.drop = torch.nn.Dropout(0.0)
        self.encoder = torch.nn.Embedding(V, E, dtype=dtype)
        self.rnn = torch.nn.LSTM(E, H, 2, dtype=dtype)
        self.decoder = torch.nn.Linear(H, V, dtype=dtype)
        self.decoder.weight = self.encoder.weight

    def forward(self, ids, state=None):
        out, state = self.rnn(self.drop(self.encoder(ids)), state)
        return self.decoder(self.drop(out)), state


def twins(dtype):
    model = WordLM(dtype)
    tdt = torch.float64 if dtype == np.float64 else torch.float32
    ref = TorchWordLM(tdt)
    model.load_state_dict({k: v.detach().numpy() for k, v in ref.state_dict().items()})
    return model, ref


def test_composite_state_dict_keys_and_parameters_are_torchs():
    model, ref = twins(np.float64)
    assert list(model.state_dict()) == list(ref.state_dict())
    assert [n for n, _ in model.named_parameters()] == [n for n, _ in ref.named_parameters()]
    assert len(list(model.parameters())) == len(list(ref.parameters()))
    assert model.decoder.weight is model.encoder.weight
    assert [n for n, _ in model.named_modules()] == [n for n, _ in ref.named_modules()]
    assert "(rnn): LSTM(6, 6, num_layers=2" in repr(model)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_composite_tied_model_trains_as_torch(dtype, kind):
    """20 steps from the same weights, clipping at 0.25: losses, parameters and optimizer
    state after every step."""
    model, ref = twins(dtype)
    rng = np.random.default_rng(0)
    crit, tcrit = bptt.CrossEntropyLoss(), torch.nn.CrossEntropyLoss()
    if kind == "sgd":
        opt = bptt.SGD(model.parameters(), lr=0.5, momentum=0.9)
        topt = torch.optim.SGD(ref.parameters(), lr=0.5, momentum=0.9)
    else:
        opt = bptt.Adam(model.parameters(), lr=0.01)
        topt = torch.optim.Adam(ref.parameters(), lr=0.01)
    tol = TOL[dtype]
    state = tstate = None
    for _ in range(20):
        ids, y = rng.integers(0, V, (7, 3)), rng.integers(0, V, 21)
        logits, state = model(ids, state)
        loss = crit(logits.reshape(-1, V), y)
        opt.zero_grad()
        model.backward(crit.backward().reshape(logits.shape))
        norm = bptt.clip_grad_norm_(model.parameters(), 0.25)

        tlogits, tstate = ref(torch.as_tensor(ids), tstate)
        tstate = tuple(s.detach() for s in tstate)
        tloss = tcrit(tlogits.reshape(-1, V), torch.as_tensor(y))
        topt.zero_grad()
        tloss.backward()
        tnorm = torch.nn.utils.clip_grad_norm_(ref.parameters(), 0.25)
        assert abs(loss - tloss.item()) <= tol * abs(tloss.item())
        assert abs(norm - tnorm.item()) <= tol * tnorm.item()
        opt.step()
        topt.step()
        for (name, p), (_, tp) in zip(model.named_parameters(), ref.named_parameters(),
                                      strict=True):
            assert rel(p, tp.detach().numpy()) < tol, name
        for i, tp in enumerate(ref.parameters()):
            tst = topt.state[tp]
            if kind == "adam":
                assert rel(opt.m[str(i)], tst["exp_avg"].numpy()) < tol
                assert rel(opt.v[str(i)], tst["exp_avg_sq"].numpy()) < tol
            else:
                assert rel(opt.momentum_buffer[str(i)], tst["momentum_buffer"].numpy()) < tol


def test_tied_weight_is_updated_once_with_one_moment():
    model = WordLM(np.float64)
    opt = bptt.Adam(model.named_parameters(), lr=0.01)
    assert set(opt.m) == {n for n, _ in model.named_parameters()}
    assert "decoder.weight" not in opt.m and "encoder.weight" in opt.m


@pytest.mark.parametrize("momentum,dampening,nesterov,wd", [
    (0.0, 0.0, False, 0.0), (0.9, 0.0, False, 0.0), (0.9, 0.1, False, 0.01),
    (0.9, 0.0, True, 0.001), (0.0, 0.0, False, 0.1)])
def test_sgd_as_torch(momentum, dampening, nesterov, wd):
    rng = np.random.default_rng(0)
    p = bptt.Parameter(rng.standard_normal((4, 3)))
    tp = torch.tensor(np.array(p), requires_grad=True)
    opt = bptt.SGD([p], lr=0.1, momentum=momentum, dampening=dampening, weight_decay=wd,
                   nesterov=nesterov)
    topt = torch.optim.SGD([tp], lr=0.1, momentum=momentum, dampening=dampening,
                           weight_decay=wd, nesterov=nesterov)
    for i in range(15):
        g = rng.standard_normal((4, 3))
        p.grad[...] = g
        tp.grad = torch.tensor(g)
        if i == 7:
            opt.param_groups[0]["lr"] = topt.param_groups[0]["lr"] = 0.03
        opt.step()
        topt.step()
        assert rel(p, tp.detach().numpy()) < 1e-13
    back = bptt.SGD([bptt.Parameter(np.zeros((4, 3)))], lr=0.1, momentum=momentum)
    back.load_state_dict(opt.state_dict())
    assert back.t == 15


def test_reduce_lr_on_plateau_as_torch():
    metrics = [5, 4, 4.1, 4.2, 4.0, 3.9, 3.95, 3.96, 3.97, 3.98, 3.99, 4.5, 4.6, 2, 2.5, 2.6, 2.7,
               2.8, 2.9, 3.0, 3.1, 3.2]
    for kw in [dict(patience=1), dict(patience=2, cooldown=1, factor=0.25),
               dict(mode="max", patience=0), dict(threshold=0.05, threshold_mode="abs",
                                                  patience=1, min_lr=0.03)]:
        p = bptt.Parameter(np.zeros(2))
        opt = bptt.SGD([p], lr=1.0)
        sched = bptt.ReduceLROnPlateau(opt, **kw)
        tp = torch.zeros(2, requires_grad=True)
        topt = torch.optim.SGD([tp], lr=1.0)
        tsched = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, **kw)
        for m in metrics:
            sched.step(m)
            tsched.step(m)
            assert opt.param_groups[0]["lr"] == pytest.approx(topt.param_groups[0]["lr"]), kw


def test_step_schedule_on_an_optimizer():
    opt = bptt.SGD([bptt.Parameter(np.zeros(2))], lr=1.0)
    sched = bptt.StepSchedule(0.1, decay=0.5, every=2, start=2)
    assert [sched.apply(opt, s) for s in range(5)] == [sched(s) for s in range(5)]
    assert opt.param_groups[0]["lr"] == sched(4)


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_every_torch_positional_call_builds_the_same_configuration(kind):
    extra = ("tanh",) if kind == "RNN" else ()
    for args in [(), (2,), (2, *extra), (2, *extra, False), (2, *extra, True, True),
                 (2, *extra, True, False, 0.5), (2, *extra, True, False, 0.5, True)]:
        tl = getattr(torch.nn, kind)(10, 20, *args)
        bl = getattr(bptt, kind)(10, 20, *args)
        for name in ("num_layers", "bias", "batch_first", "dropout", "bidirectional"):
            assert getattr(bl, name) == getattr(tl, name), (args, name)
        assert list(bl.state_dict()) == list(tl.state_dict())
    tl, bl = torch.nn.LSTM(10, 20, 1, True, False, 0.0, False, 5), bptt.LSTM(10, 20, 1, True,
                                                                             False, 0.0, False, 5)
    assert bl.proj_size == tl.proj_size == 5
    with pytest.raises(TypeError):
        getattr(bptt, kind)(10, 20, 1, *extra, True, False, 0.0, False, 0, np.float64)


CELLS = [("RNNCell", {}), ("RNNCell", {"nonlinearity": "relu"}), ("LSTMCell", {}),
         ("GRUCell", {}), ("GRUCell", {"bias": False})]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name,kw", CELLS)
def test_cell_loop_and_its_backward_as_torch(name, kw, dtype):
    """A 10-step loop of one cell, the loss on every step's h: the gradients of every
    parameter, of each x and of the initial state."""
    I, Hc, B, T = 4, 5, 3, 10
    tdt = torch.float64 if dtype == np.float64 else torch.float32
    tcell = getattr(torch.nn, name)(I, Hc, dtype=tdt, **kw)
    cell = getattr(bptt, name)(I, Hc, dtype=dtype, **kw)
    cell.load_state_dict({k: v.detach().numpy() for k, v in tcell.state_dict().items()})
    assert list(cell.state_dict()) == list(tcell.state_dict())
    lstm = name == "LSTMCell"
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((T, B, I)).astype(dtype)
    h0 = rng.standard_normal((B, Hc)).astype(dtype)
    c0 = rng.standard_normal((B, Hc)).astype(dtype)
    dys = rng.standard_normal((T, B, Hc)).astype(dtype)

    state, hs = ((h0, c0) if lstm else h0), []
    for t in range(T):
        state = cell(xs[t], state)
        hs.append(state[0] if lstm else state)
    dxs, d = [None] * T, ((None, None) if lstm else None)
    for t in reversed(range(T)):
        if lstm:
            dh = dys[t] if d[0] is None else dys[t] + d[0]
            dxs[t], d = cell.backward((dh, d[1]))
        else:
            dxs[t], d = cell.backward(dys[t] if d is None else dys[t] + d)

    tx = torch.tensor(xs, requires_grad=True)
    th0, tc0 = torch.tensor(h0, requires_grad=True), torch.tensor(c0, requires_grad=True)
    tstate, total = ((th0, tc0) if lstm else th0), 0
    for t in range(T):
        tstate = tcell(tx[t], tstate)
        total = total + ((tstate[0] if lstm else tstate) * torch.tensor(dys[t])).sum()
    total.backward()
    tol = TOL[dtype] * 10
    assert rel(np.stack(dxs), tx.grad.numpy()) < tol
    assert rel(d[0] if lstm else d, th0.grad.numpy()) < tol
    if lstm:
        assert rel(d[1], tc0.grad.numpy()) < tol
    for pname, tp in tcell.named_parameters():
        assert rel(cell.grads[pname], tp.grad.numpy()) < tol, pname
    assert rel(hs[-1], (tstate[0] if lstm else tstate).detach().numpy()) < tol


def test_cell_unbatched_and_errors():
    cell = bptt.GRUCell(3, 4, seed=0)
    h = cell(np.ones(3, np.float32))
    assert h.shape == (4,)
    dx, dh = cell.backward(np.ones(4))
    assert dx.shape == (3,) and dh.shape == (4,)
    with pytest.raises(ValueError, match="x: expected shape"):
        cell(np.ones((2, 5)))
    with pytest.raises(TypeError, match="hx: expected a tuple"):
        bptt.LSTMCell(3, 4)(np.ones((2, 3)), np.ones((2, 4)))


def test_dropout_used_twice_applies_each_mask_in_its_backward():
    drop = bptt.Dropout(0.5, seed=3)
    a, b = np.ones((50, 4)), np.ones((50, 4))
    ya, yb = drop(a), drop(b)
    assert not np.array_equal(ya, yb)
    assert np.array_equal(drop.backward(np.ones_like(yb)), yb)
    assert np.array_equal(drop.backward(np.ones_like(ya)), ya)
    drop.eval()
    assert drop(a) is a
    bptt.manual_seed(7)
    m1 = bptt.Dropout(0.5)(np.ones(100))
    bptt.manual_seed(7)
    assert np.array_equal(m1, bptt.Dropout(0.5)(np.ones(100)))


def test_manual_seed_makes_layers_reproducible():
    bptt.manual_seed(3)
    a = bptt.LSTM(3, 4, 2, dropout=0.5).state_dict()
    bptt.manual_seed(3)
    b = bptt.LSTM(3, 4, 2, dropout=0.5).state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    c = bptt.LSTM(3, 4, 2, dropout=0.5).state_dict()
    assert not np.array_equal(a["weight_ih_l0"], c["weight_ih_l0"])


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_a_rejected_backward_leaves_the_loop_working(kind):
    """The researcher's case: a backward rejected for a bad dout, then the loop goes on."""
    layer = getattr(bptt, kind)(2, 4, dtype=np.float64, seed=0)
    lin = bptt.Linear(4, 1, dtype=np.float64, seed=1)
    x = np.random.default_rng(0).standard_normal((6, 3, 2))
    out, _ = layer(x)
    with pytest.raises(ValueError, match="dout"):
        layer.backward(np.ones((6, 3)))
    y = lin(out[-1])
    with pytest.raises(ValueError, match="dy"):
        lin.backward(np.ones(3))
    for _ in range(3):                              # the next steps of the loop
        out, _ = layer(x)
        y = lin(out[-1])
        dout = np.zeros_like(out)
        dout[-1] = lin.backward(np.ones_like(y))
        layer.zero_grad()
        layer.backward(dout)
    assert len(lin._calls) == 0


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_backward_none_dout_is_a_loss_on_the_final_state(kind):
    layer = getattr(bptt, kind)(2, 3, dtype=np.float64, seed=0)
    x = np.random.default_rng(1).standard_normal((5, 2, 2))
    out, state = layer(x)
    dh = np.ones((1, 2, 3))
    dstate = (dh, None) if kind == "LSTM" else dh
    dx_none, _ = layer.backward(None, dstate)
    layer(x)
    dx_zero, _ = layer.backward(np.zeros_like(out), dstate)
    assert np.array_equal(dx_none, dx_zero)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_losses_as_torch(reduction):
    rng = np.random.default_rng(0)
    z, y = rng.standard_normal((7, 5)), rng.integers(0, 5, 7)
    y[2] = -100
    tz = torch.tensor(z, requires_grad=True)
    ce = bptt.CrossEntropyLoss(reduction=reduction)
    tl = torch.nn.CrossEntropyLoss(reduction=reduction)(tz, torch.as_tensor(y))
    loss = ce(z, y)
    d = rng.standard_normal(7) if reduction == "none" else 1.0
    tl.backward(torch.tensor(d) if reduction == "none" else None)
    assert rel(loss, tl.detach().numpy()) < 1e-12
    assert rel(ce.backward(d), tz.grad.numpy()) < 1e-12

    logp = bptt.log_softmax(z, axis=1)
    assert rel(logp, torch.log_softmax(torch.tensor(z), 1).numpy()) < 1e-13
    tp = torch.tensor(logp, requires_grad=True)
    nll = bptt.NLLLoss(reduction=reduction)
    tn = torch.nn.NLLLoss(reduction=reduction)(tp, torch.as_tensor(y))
    tn.backward(torch.tensor(d) if reduction == "none" else None)
    assert rel(nll(logp, y), tn.detach().numpy()) < 1e-12
    assert rel(nll.backward(d), tp.grad.numpy()) < 1e-12

    a, b = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    ta = torch.tensor(a, requires_grad=True)
    mse = bptt.MSELoss(reduction=reduction)
    tm = torch.nn.MSELoss(reduction=reduction)(ta, torch.tensor(b))
    dm = rng.standard_normal((4, 3)) if reduction == "none" else 1.0
    tm.backward(torch.tensor(dm) if reduction == "none" else None)
    assert rel(mse(a, b), tm.detach().numpy()) < 1e-12
    assert rel(mse.backward(dm), ta.grad.numpy()) < 1e-12


def test_log_softmax_module_backward_as_torch():
    z = np.random.default_rng(0).standard_normal((3, 4))
    tz = torch.tensor(z, requires_grad=True)
    dy = np.random.default_rng(1).standard_normal((3, 4))
    torch.log_softmax(tz, 1).backward(torch.tensor(dy))
    m = bptt.LogSoftmax(dim=1)
    m(z)
    assert rel(m.backward(dy), tz.grad.numpy()) < 1e-13


def test_mse_shape_mismatch_and_no_grad_keep_nothing():
    with pytest.raises(ValueError, match=r"target: expected the prediction's shape \(4, 1\)"):
        bptt.MSELoss()(np.zeros((4, 1)), np.zeros(4))
    ce = bptt.CrossEntropyLoss()
    with bptt.no_grad():
        ce(np.zeros((2, 3)), np.array([0, 1]))
    with pytest.raises(RuntimeError, match="call the CrossEntropyLoss first"):
        ce.backward()


def test_clip_grad_norm_counts_a_tied_gradient_once_and_takes_any_iterable():
    p = bptt.Parameter(np.zeros(3))
    p.grad[...] = [3.0, 4.0, 0.0]
    q = bptt.Parameter(np.zeros(1))
    q.grad[...] = 12.0
    assert bptt.clip_grad_norm_([p, q, p], 1e9) == pytest.approx(13.0)
    assert bptt.clip_grad_norm_(iter([p]), 1.0) == pytest.approx(5.0)
    assert np.linalg.norm(p.grad) == pytest.approx(1.0, rel=1e-5)
    assert bptt.clip_grad_norm([q.grad], 1e9) == pytest.approx(12.0)


def test_parameter_is_an_array_and_arithmetic_gives_plain_arrays():
    p = bptt.Parameter(np.ones((2, 2), np.float32))
    assert isinstance(p, np.ndarray) and p.grad.shape == (2, 2)
    assert type(p * 2) is np.ndarray and type(p[0]) is np.ndarray and type(p.copy()) is np.ndarray
    same = p
    same -= 1
    assert same is p and isinstance(p, bptt.Parameter) and not p.any()
    lin = bptt.Linear(2, 2)
    with pytest.raises(TypeError, match="bptt.Parameter"):
        lin.weight = np.zeros((2, 2), np.float32)
    with pytest.raises(ValueError, match="weight: expected a parameter of shape"):
        lin.weight = bptt.Parameter(np.zeros((3, 2), np.float32))


def test_pickle_of_a_composite_model_is_parameters_and_grads():
    model = WordLM(np.float32)
    out, _ = model(np.zeros((50, 8), np.int64))
    model.backward(np.ones_like(out))
    nbytes = sum(p.nbytes for p in model.parameters())
    blob = pickle.dumps(model)
    assert len(blob) < 2 * nbytes + 12000
    back = pickle.loads(blob)
    assert back.decoder.weight is back.encoder.weight
    assert all(np.array_equal(a.grad, b.grad) for a, b in zip(model.parameters(),
                                                               back.parameters(), strict=True))


def test_train_and_eval_are_recursive():
    model = WordLM(np.float32, p=0.5)
    model.eval()
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())
