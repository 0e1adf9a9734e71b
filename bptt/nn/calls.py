"""The record of a module's calls between a forward and its backward, for the modules that may
be called several times in one forward (Linear, Embedding, Dropout, the cells, LogSoftmax): each
recorded call is pushed, each backward pops the last (last in, first out). The recurrent layers
keep their own one-forward rule (``bptt.nn.grad_mode``)."""

from . import grad_mode as gm
from .module import Module


class Calls:
    """The recorded calls of a module that may be called several times in one forward: each
    recorded call pushes what its backward needs, each backward pops the last (LIFO).

    An entry lives while the call's output does (as torch frees a graph nobody references):
    when a new call is pushed, earlier calls whose output is no longer referenced anywhere are
    dropped, so forwards that are never differentiated (an evaluation outside ``no_grad()``)
    do not pile up. So keep the output of a call you will differentiate until the module is
    called again (a local variable does; a cell's call keeps its input state, so a chain of
    cell steps lives through its last output).
    A backward rejected for bad arguments leaves its entry (a corrected backward may follow),
    but the next recorded call drops it, so a loop that goes on after it works."""

    def __init__(self):
        self._stack: list = []   # (entry, weak reference to the output's memory)
        self._rejected = False   # a backward of the top entry was tried and rejected

    def push(self, entry, out) -> None:
        """Record a call (only while gradients are enabled: not inside ``no_grad()``)."""
        if not gm.is_grad_enabled():
            return
        if self._rejected and self._stack:
            self._stack.pop()
        self._rejected = False
        self._stack = [e for e in self._stack if e[1]() is not None]
        self._stack.append((entry, gm.refs(out)[0]))

    def top(self, what: str):
        """The entry the next backward is for; RuntimeError naming ``what`` if none."""
        if not self._stack:
            raise RuntimeError(
                f"backward: call forward first (no recorded call of this {what} is waiting for "
                f"its backward: one backward per recorded call, in reverse order; calls inside "
                f"bptt.no_grad(), and calls whose output was no longer referenced when the "
                f"{what} was called again, are not kept)")
        return self._stack[-1][0]

    def rejected(self) -> None:
        self._rejected = True

    def pop(self):
        self._rejected = False
        return self._stack.pop()[0]

    def __len__(self):
        return len(self._stack)


class Stacked(Module):
    """A module whose recorded calls go on a ``Calls`` stack (``self._calls``): its backward
    is ``_backward(dy, entry)``, called through ``backward``, which pops the entry only when
    ``_backward`` succeeded. Pickle and deepcopy leave the pending calls out."""

    _what = "module"

    def __init__(self):
        super().__init__()
        self._calls = Calls()

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_calls"] = Calls()
        return state

    def backward(self, *args, **kwargs):
        entry = self._calls.top(self._what)
        try:
            result = self._backward(entry, *args, **kwargs)
        except (ValueError, TypeError):
            self._calls.rejected()
            raise
        self._calls.pop()
        return result
