"""The recurrent layers' forward and backward with ``lengths``: a batch of sequences of
different lengths, run segment by segment (``bptt.nn.packing`` for what it means and how).

``PackedPath`` is a part of ``bptt.nn.layers.Recurrent`` (a base class of it, kept apart so
that the layer's module holds the unpacked path): it reads the layer's parameters, buffers,
runners and state shapes, and sets its cache as the unpacked path does.
"""

import functools

import numpy as np

from . import _params
from . import dropout as drop


class PackedPath:
    """``Recurrent._forward_packed`` and ``_backward_packed`` (see ``bptt.nn.layers``)."""

    def _forward_packed(self, x, state0, plan, between, recurrent):
        """``forward`` with lengths: the batch in length order, each direction run segment by
        segment (``bptt.nn.packing``); each layer's outputs in rows (T, B, D*P), zero at the
        padded steps, which the next layer reads as (T, D*P, B). Dropout's masks (from
        ``_masks``) are put in the same order, ``between``'s as rows."""
        T, B, _ = x.shape
        P, D = self.state_size, self.num_directions
        finals = [np.empty(shape, self.dtype) for shape in self._state_shapes(B)]
        x = plan.sorted(x, 1)  # (T, B, I), a copy
        x[plan.padded] = 0  # what the caller padded with is never read (segments' extra columns)
        X, layers = x.transpose(0, 2, 1), []  # (T, I, B)
        recurrent = [None if m is None else plan.sorted(m) for m in recurrent]  # (P, B)
        between = [None if m is None else plan.sorted(m.transpose(0, 2, 1), 1) for m in between]
        for k in range(self.num_layers):
            Y = self._buffer((k, "rows"))("Y", (T, B, D * P))
            dirs = []
            for d in range(D):
                j = k * D + d
                init = tuple(plan.sorted(s[j], 0).T for s in state0)  # (P, B) or (H, B) each
                rows = Y[:, :, d * P : (d + 1) * P]
                final, cache = plan.forward(
                    self._runner(k, d, recurrent[j]), X, init, d == 1, self._arena((k, d)), rows
                )
                for f_all, f in zip(finals, final, strict=True):
                    f_all[j] = plan.unsorted(f.T, 0)
                dirs.append(cache)
            Y[plan.padded] = 0
            layers.append(dirs)
            if k < self.num_layers - 1 and between[k] is not None:  # mask * outputs, as rows
                X = np.multiply(Y, between[k], out=self._buffer((k, "rows"))("Yd", Y.shape))
                X = X.transpose(0, 2, 1)
            else:
                X = Y.transpose(0, 2, 1)
        self._cache = (layers, B, T, plan, between)
        if self.batch_first:  # rows gathered into the caller's order: a new array
            out = np.take(Y.transpose(1, 0, 2), plan.inverse, axis=0)
        else:
            out = plan.unsorted(Y, 1)
        return out, self._pack(tuple(finals))

    def _backward_packed(self, dout, dfinal, plan, keep_state_grads=False):
        """``backward`` after a forward with lengths: gradients in rows (T, B, F), sorted,
        zero at the padded steps; each direction segment by segment (``bptt.nn.packing``).
        The state gradients, if kept, are rows (L, T, B, D*P) (c's D*H), sorted, until the end."""
        layers, B, T, _, between = self._cache
        P, D, sizes = self.state_size, self.num_directions, self._state_sizes()
        kept_all = [np.empty((self.num_layers, T, B, D * n), self.dtype) for n in sizes]
        kept_all = kept_all if keep_state_grads else []
        dstate0 = [np.empty(shape, self.dtype) for shape in self._state_shapes(B)]
        dY = plan.sorted(dout.transpose(1, 0, 2) if self.batch_first else dout, 1)  # a copy
        dY[plan.padded] = 0  # padded steps are not outputs
        grads = {}
        for k in reversed(range(self.num_layers)):
            dX = None
            for d, sfx in enumerate(self._suffixes()):
                j = k * D + d
                W_hhT = self._w(f"weight_hh_l{k}{sfx}").T
                pieces, g, d0 = plan.backward(
                    self.kind,
                    functools.partial(self._steps_backward, W_hhT),
                    dY[:, :, d * P : (d + 1) * P],
                    tuple(plan.sorted(s[j], 0).T for s in dfinal),
                    layers[k][d],
                    d == 1,
                    self._arena((k, d)),
                    tuple(a[k, :, :, d * n : (d + 1) * n]
                          for a, n in zip(kept_all, sizes, strict=False)) or None,
                )
                for s_all, s in zip(dstate0, d0, strict=True):
                    s_all[j] = plan.unsorted(s.T, 0)
                self._store_grads(grads, k, sfx, g)
                W_ih = self._w(f"weight_ih_l{k}{sfx}")
                for rows, G in pieces:  # packed steps (N, in) -> rows (T, B, in)
                    part = plan.unpack(G.T @ W_ih[rows], d == 1)
                    dX = part if dX is None else np.add(dX, part, out=dX)
            dY = dX if k == 0 else drop.apply(dX, between[k - 1], dX)  # through dropout's mask
        _params.accumulate(self.params, grads)
        if keep_state_grads:  # rows in the caller's order (and layout): new arrays
            kept_all = [plan.unsorted(a, 2) for a in kept_all]
            if self.batch_first:
                kept_all = [np.ascontiguousarray(a.transpose(0, 2, 1, 3)) for a in kept_all]
            self.state_grads = self._pack(tuple(kept_all))
        self._cache = None
        dx = plan.unsorted(dX, 1)  # (T, B, I) in the caller's order
        dx = dx.transpose(1, 0, 2) if self.batch_first else dx
        return dx, self._pack(tuple(dstate0))
