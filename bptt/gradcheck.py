"""Gradient check: analytic gradients against central finite differences, in float64.

    result = gradcheck(loss_fn, params, grads)      # grads keyed "d" + name, as the course does
    print(result)                                   # one line per parameter
    result.ok, result.max_error, result["Waa"].worst_index

For each parameter the numerical gradient is ``(L(p + eps) - L(p - eps)) / (2 eps)``, entry by
entry, and the reported relative error is **norm-wise** over the parameter's checked entries:

    rel_error = ||g - g_num|| / (||g|| + ||g_num||)          (0 when both are zero)

Norm-wise rather than the maximum over entries: an entry whose gradient is ~0 gives a large
entry-wise ratio from rounding noise alone, while a wrong entry still moves the norm. To locate a
bug, each report also names the worst entry, the one with the largest |g - g_num|, with both values
there. In float64 with eps = 1e-6, a correct backward gives about 1e-8 or less; the default
tolerance is 1e-7.

BPTT bugs depend on t, so for a sequence gradient ``per_step={"x": -1}`` also breaks the relative
error down along an axis (``dx[:, :, t]`` for each t; ``result["x"].per_step``), and
``check_sequence`` (bptt/stepwise/check.py) checks a step-by-step forward/backward pair
(``bptt.stepwise``'s or a learner's own) with the error of dx per step and of da0 per chain
length: da0 when the loss reads the first t + 1 steps only, so a recurrent-gradient bug shows as
the first chain length that fails; ``check_cell`` checks one step, every input of the cell.
The printed result ends with ``diagnosis``: where a per-step error goes wrong, in words.

``check_layer`` does the same for an engine layer (``bptt.RNN``, ``bptt.LSTM``, ``bptt.GRU``): every
parameter of its state_dict, the input and the initial state, under a random linear loss.
"""

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from html import escape

import numpy as np


@dataclass(frozen=True)
class ParamReport:
    """The check of one parameter."""

    name: str                       # the parameter's key in ``params``
    shape: tuple                    # its shape
    rel_error: float                # ||g - g_num|| / (||g|| + ||g_num||) over the checked entries
    worst_index: tuple              # the entry with the largest |g - g_num|
    analytic: float                 # g there
    numeric: float                  # g_num there
    checked: int                    # how many entries were checked
    per_step: tuple = ()            # rel_error per step t (per_step option, check_sequence)
    step_axis: int | None = None    # the axis broken down; None for a0's chains in check_sequence

    @property
    def worst_step(self) -> int | None:
        """The index along ``step_axis`` with the largest rel_error (None without per_step)."""
        if not self.per_step or all(np.isnan(self.per_step)):
            return None
        return int(np.nanargmax(self.per_step))


class GradcheckResult(Mapping):
    """Reports keyed by parameter name (a read-only dict of ``ParamReport``); prints as a table.

    ``ok``: every rel_error <= tol. ``max_error`` and ``worst``: the largest rel_error and its name.
    ``skipped``: parameters that had no gradient in ``grads`` and were not checked.
    """

    def __init__(self, reports: dict, tol: float, eps: float, skipped: tuple = ()):
        self.reports, self.tol, self.eps, self.skipped = dict(reports), tol, eps, tuple(skipped)

    def __getitem__(self, name: str) -> ParamReport:
        return self.reports[name]

    def __iter__(self):
        return iter(self.reports)

    def __len__(self) -> int:
        return len(self.reports)

    @property
    def worst(self) -> str:
        return max(self.reports, key=lambda n: self.reports[n].rel_error)

    @property
    def max_error(self) -> float:
        return self.reports[self.worst].rel_error

    @property
    def ok(self) -> bool:
        return self.max_error <= self.tol

    def __str__(self) -> str:
        rows = [("name", "shape", "checked", "rel_error", "worst entry", "analytic", "numeric")]
        for r in self.reports.values():
            rows.append((r.name, str(r.shape), str(r.checked), f"{r.rel_error:.2e}",
                         str(r.worst_index), f"{r.analytic:.6g}", f"{r.numeric:.6g}"))
        widths = [max(len(row[k]) for row in rows) for k in range(len(rows[0]))]
        lines = [f"gradcheck: central differences, eps {self.eps:g}; "
                 f"rel_error = ||g - g_num|| / (||g|| + ||g_num||)"]
        for row in rows:
            lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        for r in self.reports.values():
            if r.per_step:
                what = (f"by t (axis {r.step_axis})" if r.step_axis is not None
                        else "by chain, the loss reading steps 0..t")
                steps = "  ".join(f"t={k} {e:.1e}" for k, e in enumerate(r.per_step))
                lines.append(f"{r.name} {what}: {steps}; worst t={r.worst_step}")
        verdict = f"<= tol {self.tol:g}: OK" if self.ok else f"> tol {self.tol:g}: FAILED"
        lines.append(f"max rel_error {self.max_error:.2e} ({self.worst}) {verdict}")
        if self.skipped:
            lines.append("not checked (no gradient given): " + ", ".join(self.skipped))
        return "\n".join(lines + self.diagnosis)

    @property
    def diagnosis(self) -> list[str]:
        """Where each per-step error goes wrong, in words (empty when every step passes)."""
        found = (_where_wrong(r, self.tol) for r in self.reports.values() if r.per_step)
        return [d for d in found if d]

    def _repr_html_(self) -> str:
        """The table as HTML, for a notebook cell whose last expression is the result."""
        head = ("name", "shape", "checked", "rel_error", "worst entry", "analytic", "numeric")
        cells = "".join(f"<th>{h}</th>" for h in head)
        rows = [f"<tr>{cells}</tr>"]
        for r in self.reports.values():
            bad = ' style="color:#b00;font-weight:bold"' if r.rel_error > self.tol else ""
            vals = (r.name, r.shape, r.checked, f"{r.rel_error:.2e}", r.worst_index,
                    f"{r.analytic:.6g}", f"{r.numeric:.6g}")
            rows.append("<tr>" + "".join(f"<td{bad if k == 3 else ''}>{escape(str(v))}</td>"
                                         for k, v in enumerate(vals)) + "</tr>")
        verdict = "OK" if self.ok else "FAILED"
        notes = "".join(f"<li>{escape(d)}</li>" for d in self.diagnosis)
        skipped = (f"<p>not checked (no gradient given): {escape(', '.join(self.skipped))}</p>"
                   if self.skipped else "")
        return (f"<p>gradcheck: max rel_error {self.max_error:.2e} ({escape(self.worst)}), "
                f"tol {self.tol:g}: <b>{verdict}</b></p><table>{''.join(rows)}</table>"
                f"{skipped}{f'<ul>{notes}</ul>' if notes else ''}")


def _where_wrong(r: ParamReport, tol: float) -> str:
    """One sentence on where ``r.per_step`` fails ("" when no step does). Along time (dx by t):
    right at the last k steps only means what flows back from step t+1 is wrong; by chain (da0
    when the loss reads steps 0..t): right for the shortest chains only means the same."""
    ok = [not e > tol for e in r.per_step]          # nan: not checked, so not a failure
    T, first_bad = len(ok), ok.index(False) if False in ok else None
    if first_bad is None:
        return ""
    bad = [t for t in range(T) if not ok[t]]
    recurrent = "the gradient from step t+1 does not reach step t (look at what is carried back)"
    if r.step_axis is None:
        if first_bad > 0 and all(not v for v in ok[first_bad:]):
            return (f"{r.name}: right only when the loss reads the first {first_bad} step(s), "
                    f"wrong once it crosses {first_bad} recurrent step(s): {recurrent}")
        if first_bad == 0:
            return f"{r.name}: wrong already for one step: check the cell with bptt.check_cell"
        return f"{r.name}: wrong for the chains t = {bad}"
    last_ok = T - bad[-1] - 1                         # how many steps at the end are right
    if last_ok and len(bad) == T - last_ok:
        return (f"{r.name}: right at the last {last_ok} step(s) only (t >= {T - last_ok}), "
                f"wrong before: {recurrent}")
    if len(bad) == T:
        return (f"{r.name}: wrong at every step: the error is inside a step, not only in what "
                f"flows between steps; check one step with bptt.check_cell")
    if first_bad and len(bad) == T - first_bad:
        return f"{r.name}: right at the first {first_bad} step(s) only, wrong from t = {first_bad}"
    return f"{r.name}: wrong at t = {bad}"

    def __repr__(self) -> str:
        return (f"GradcheckResult(max_error={self.max_error:.2e}, worst={self.worst!r}, "
                f"ok={self.ok}, checked={list(self.reports)})")


def _grad_keys(params: Mapping, grads: Mapping, prefix: str, names) -> tuple[dict, list]:
    """{param name: gradient key} to check, and the names skipped for want of a gradient."""
    if names is None:
        keys = {n: prefix + n for n in params}
        skipped = [n for n, k in keys.items() if k not in grads]
        keys = {n: k for n, k in keys.items() if k in grads}
        if not keys:
            raise ValueError(f"grads: no key matches a parameter with prefix {prefix!r} "
                             f"(parameters {list(params)}, grads {list(grads)})")
        return keys, skipped
    keys = dict(names) if isinstance(names, Mapping) else {n: prefix + n for n in names}
    for n, k in keys.items():
        if n not in params:
            raise ValueError(f"params: missing key {n!r}")
        if k not in grads:
            raise ValueError(f"grads: missing key {k!r} (the gradient of {n!r})")
    return keys, []


def _scalar(value) -> float:
    """The loss as a float; TypeError for an array or anything that is not one number."""
    shape = np.shape(value)
    if shape != ():
        raise TypeError(f"loss_fn: expected a scalar loss (one number), got an array of shape "
                        f"{shape}; return its sum or mean")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"loss_fn: expected a scalar loss (one number), got "
                        f"{type(value).__name__}") from None


def _step_axes(per_step, params: Mapping) -> dict:
    """{name: axis} from the per_step option (a mapping, or names meaning the last axis)."""
    if per_step is None:
        return {}
    axes = dict(per_step) if isinstance(per_step, Mapping) else {n: -1 for n in per_step}
    for name, axis in axes.items():
        if name not in params:
            raise ValueError(f"per_step: {name!r} is not a key of params")
        ndim = np.ndim(params[name])
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) \
                or not -ndim <= axis < ndim:
            raise ValueError(f"per_step[{name!r}]: expected an axis of its {ndim} dimensions, "
                             f"got {axis!r}")
        axes[name] = int(axis) % ndim
    return axes


def _rel(g: np.ndarray, g_num: np.ndarray) -> float:
    """||g - g_num|| / (||g|| + ||g_num||), 0 when both are zero."""
    denom = np.linalg.norm(g) + np.linalg.norm(g_num)
    return float(np.linalg.norm(g - g_num) / denom) if denom > 0 else 0.0


def _by_step(g: np.ndarray, g_num: np.ndarray, flat: np.ndarray, shape: tuple,
             axis: int) -> tuple:
    """rel_error over the checked entries at each index along ``axis`` (nan: none checked)."""
    where = np.unravel_index(flat, shape)[axis]
    out = []
    for k in range(shape[axis]):
        sel = where == k
        out.append(_rel(g[sel], g_num[sel]) if sel.any() else float("nan"))
    return tuple(out)


def _entries(size: int, max_entries: int | None, rng) -> np.ndarray:
    if max_entries is None or max_entries >= size:
        return np.arange(size)
    return np.sort(rng.choice(size, size=max_entries, replace=False))


def gradcheck(loss_fn: Callable[[dict], float], params: dict, grads: Mapping, *,
              prefix: str = "d", names: Iterable[str] | Mapping[str, str] | None = None,
              eps: float = 1e-6, tol: float = 1e-7, max_entries: int | None = None,
              seed: int = 0, per_step: Mapping[str, int] | Iterable[str] | None = None
              ) -> GradcheckResult:
    """Compare analytic gradients with central differences of ``loss_fn``.

    Parameters
    ----------
    loss_fn : callable
        ``loss_fn(params) -> float``: the scalar loss. It is called with ``params`` itself, whose
        arrays are perturbed in place one entry at a time (and restored exactly), so a function
        that reads the arrays through a closure sees the perturbation too.
    params : dict of float64 arrays
        What to differentiate: parameters, and inputs too if you like (x, a0, ...).
    grads : dict
        The analytic gradients. The gradient of ``params[name]`` is ``grads[prefix + name]``:
        prefix "d" for the course's dicts (dWaa), "" for a dict keyed like params (an engine
        layer's ``grads``, keyed as its state_dict).
    names : iterable of names, or dict {name: gradient key}, optional
        Which parameters to check (a dict maps each to its gradient's key, overriding prefix).
        Default: every parameter whose gradient is in ``grads``; the others are listed as skipped.
    eps : float
        The step of the central differences.
    tol : float
        ``ok`` is true when every rel_error <= tol.
    max_entries : int, optional
        Check at most this many entries per parameter, drawn at random from ``seed``
        (default: all; each entry costs two calls of loss_fn).
    per_step : dict {name: axis}, or names (meaning the last axis), optional
        Also break each of these parameters' rel_error down along that axis: for x of shape
        (n_x, m, T_x), ``per_step={"x": -1}`` gives ``result["x"].per_step``, the error of
        dx[:, :, t] for each t (and ``.worst_step``); printed below the table.

    Raises TypeError when loss_fn returns an array (or anything but one number), and ValueError
    when every numeric gradient is zero: the loss does not depend on the arrays being perturbed.

    Returns
    -------
    GradcheckResult
        A mapping name -> ParamReport (rel_error, worst_index, analytic, numeric, ...);
        ``print(result)`` shows a table.
    """
    if not isinstance(params, Mapping) or not isinstance(grads, Mapping):
        bad = "params" if not isinstance(params, Mapping) else "grads"
        raise TypeError(f"{bad}: expected a dict of arrays, got "
                        f"{type(params if bad == 'params' else grads).__name__}")
    keys, skipped = _grad_keys(params, grads, prefix, names)
    axes = _step_axes(per_step, params)
    _scalar(loss_fn(params))                 # fails here, once, if the loss is not one number
    rng = np.random.default_rng(seed)
    reports = {}
    all_zero = True
    for name, key in keys.items():
        p = params[name]
        if not isinstance(p, np.ndarray) or p.dtype != np.float64 or not p.flags.writeable:
            got = p.dtype if isinstance(p, np.ndarray) else type(p).__name__
            raise TypeError(f"params[{name!r}]: expected a writeable float64 array for central "
                            f"differences, got {got}")
        g = np.asarray(grads[key], dtype=np.float64)
        if g.shape != p.shape:
            raise ValueError(f"grads[{key!r}]: expected shape {p.shape}, got {g.shape}")
        flat = _entries(p.size, max_entries, rng)
        g_num = np.empty(flat.size)
        for j, k in enumerate(flat):
            idx = np.unravel_index(k, p.shape)
            old = p[idx]
            up, down = old + eps, old - eps
            try:
                p[idx] = up
                loss_up = _scalar(loss_fn(params))
                p[idx] = down
                loss_down = _scalar(loss_fn(params))
            finally:
                p[idx] = old
            g_num[j] = (loss_up - loss_down) / (up - down)   # the step actually taken
        g_sel = g.reshape(-1)[flat]
        all_zero = all_zero and not g_num.any()
        diff = np.abs(g_sel - g_num)
        w = int(np.argmax(diff)) if diff.size else 0
        worst = tuple(int(i) for i in np.unravel_index(flat[w], p.shape)) if diff.size else ()
        axis = axes.get(name)
        steps = () if axis is None else _by_step(g_sel, g_num, flat, p.shape, axis)
        reports[name] = ParamReport(name, tuple(p.shape), _rel(g_sel, g_num), worst,
                                    float(g_sel[w]) if diff.size else 0.0,
                                    float(g_num[w]) if diff.size else 0.0, int(flat.size),
                                    steps, axis)
    if all_zero:
        raise ValueError("loss_fn: every numeric gradient is zero: the loss does not change when "
                         "the arrays of params do (does loss_fn compute from the dict it is "
                         "given, not from copies made before the call?)")
    return GradcheckResult(reports, tol, eps, skipped)


def check_layer(layer, x, state=None, *, seed: int = 0, eps: float = 1e-6, tol: float = 1e-7,
                max_entries: int | None = None) -> GradcheckResult:
    """Gradient check of an engine layer (``bptt.RNN``, ``bptt.LSTM``, ``bptt.GRU``; float64).

    Uses the loss L = Σ R ⊙ out + Σ R_h ⊙ h_n (+ Σ R_c ⊙ c_n for the LSTM) with random weights R
    drawn from ``seed``, runs ``layer.forward`` and ``layer.backward`` once for the analytic
    gradients, then checks every parameter (keyed as the state_dict), the input "x" and the initial
    state "h0" (and "c0"). x: the layer's input layout; state: None (zeros) or like forward's.
    The layer's parameters are perturbed in place during the check and restored exactly. With
    dropout in training mode the masks are fixed: every forward starts from the state the
    layer's generator had when the check began.
    """
    if np.dtype(getattr(layer, "dtype", None)) != np.float64:
        raise TypeError(f"layer: expected a float64 layer for central differences, got "
                        f"{getattr(layer, 'dtype', type(layer).__name__)} (build it with "
                        f"dtype=np.float64)")
    lstm = layer.kind == "LSTM"
    x = np.array(x, dtype=np.float64)
    masks = layer.get_rng_state()
    out, final = layer.forward(x, state)
    finals = final if lstm else (final,)
    if state is None:
        states = [np.zeros_like(f) for f in finals]
    else:
        states = [np.array(s, dtype=np.float64) for s in (state if lstm else (state,))]
    rng = np.random.default_rng(seed)
    R = rng.standard_normal(out.shape)
    R_final = [rng.standard_normal(f.shape) for f in finals]
    layer.zero_grad()  # backward adds into grads: this forward's only
    dx, dstate = layer.backward(R, tuple(R_final) if lstm else R_final[0])
    state_names = ("h0", "c0") if lstm else ("h0",)
    params = {**layer.params, "x": x, **dict(zip(state_names, states, strict=True))}
    dstates = [np.array(d) for d in (dstate if lstm else (dstate,))]
    grads = {**{k: g.copy() for k, g in layer.grads.items()}, "x": dx.copy(),
             **dict(zip(state_names, dstates, strict=True))}

    def loss(p: dict) -> float:
        s = (p["h0"], p["c0"]) if lstm else p["h0"]
        layer.set_rng_state(masks)  # the same dropout masks as the analytic gradients'
        o, fin = layer.forward(p["x"], s)
        fins = fin if lstm else (fin,)
        return float(np.vdot(R, o) + sum(np.vdot(r, f) for r, f in zip(R_final, fins, strict=True)))

    return gradcheck(loss, params, grads, prefix="", eps=eps, tol=tol, max_entries=max_entries,
                     seed=seed)
