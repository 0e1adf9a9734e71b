"""StepSchedule: its rule step by step, and against torch's schedulers driving torch.optim.Adam
while bptt.Adam takes the schedule's rate, over 50 steps."""

import numpy as np
import pytest
from fd import rel_error

from bptt import Adam, StepSchedule


def test_rule_by_hand():
    s = StepSchedule(lr=1.0, decay=0.5, every=3, start=4)
    assert [s(i) for i in range(12)] == [1, 1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.125, 0.125]
    w = StepSchedule(lr=0.8, warmup=4)
    assert [w(i) for i in range(6)] == [0.2, 0.4, 0.6000000000000001, 0.8, 0.8, 0.8]
    assert StepSchedule(lr=2.0, decay=0.5, every=10, start=0)(0) == 1.0  # multiplied at S itself
    assert StepSchedule(lr=3e-3)(10**9) == 3e-3
    assert StepSchedule(lr=1.0, decay=0.9, every=7, start=3)(np.int64(20)) == 0.9 ** 3


def test_depends_on_the_step_only():
    """Two schedules built apart agree at every step, in any order of asking (no state)."""
    a = StepSchedule(lr=2e-3, decay=0.97, every=100, start=2000, warmup=50)
    b = StepSchedule(lr=2e-3, decay=0.97, every=100, start=2000, warmup=50)
    steps = [5000, 0, 2099, 2100, 49, 50, 1999, 2000]
    assert [a(i) for i in steps] == [b(i) for i in reversed(steps)][::-1]
    assert a(2000) == a(2099) == 2e-3 * 0.97 and a(2100) == 2e-3 * 0.97 ** 2


@pytest.mark.parametrize("decay,every,start,warmup",
                         [(0.9, 5, 10, 0), (0.5, 1, 1, 0), (0.97, 7, 3, 6), (1.0, 1, 0, 12)])
def test_equals_torch_schedulers_over_50_steps(decay, every, start, warmup):
    torch = pytest.importorskip("torch")
    lr, steps = 0.01, 50
    rng = np.random.default_rng(0)
    params = {"w": rng.standard_normal((3, 4)), "b": rng.standard_normal(4)}
    grads = [{k: rng.standard_normal(p.shape) for k, p in params.items()} for _ in range(steps)]
    tparams = {k: torch.tensor(p.copy(), requires_grad=True) for k, p in params.items()}
    topt = torch.optim.Adam(list(tparams.values()), lr=lr)
    scheds = [torch.optim.lr_scheduler.MultiStepLR(
        topt, milestones=list(range(start, steps, every)), gamma=decay)]
    if warmup:
        scheds.append(torch.optim.lr_scheduler.LinearLR(
            topt, start_factor=1 / warmup, end_factor=1.0, total_iters=warmup - 1))
    schedule = StepSchedule(lr, decay, every, start, warmup)
    opt = Adam(params, lr=lr)
    for i, g in enumerate(grads):
        opt.lr = schedule(i)
        assert abs(opt.lr - topt.param_groups[0]["lr"]) <= 1e-13 * lr, i
        for k, tp in tparams.items():
            tp.grad = torch.tensor(g[k])
        topt.step()
        opt.step(params, g)
        for sched in scheds:
            sched.step()
    for k, tp in tparams.items():
        assert rel_error(params[k], tp.detach().numpy()) < 1e-12, k


@pytest.mark.parametrize("kwargs,match", [
    ({"lr": -1.0}, "lr: expected a number >= 0, got -1.0"),
    ({"lr": float("inf")}, "lr: expected"),
    ({"lr": 1.0, "decay": 0.0}, "decay: expected a number > 0, got 0.0"),
    ({"lr": 1.0, "every": 0}, "every: expected an integer >= 1, got 0"),
    ({"lr": 1.0, "every": 2.5}, "every: expected an integer"),
    ({"lr": 1.0, "start": -3}, "start: expected an integer >= 0, got -3"),
    ({"lr": 1.0, "warmup": True}, "warmup: expected an integer >= 0, got True"),
])
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        StepSchedule(**kwargs)
    with pytest.raises(ValueError, match="step: expected an integer >= 0, got -1"):
        StepSchedule(lr=1.0)(-1)
