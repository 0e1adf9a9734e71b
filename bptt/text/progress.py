"""The progress bar of ``bptt.train``: tqdm.auto's, except in a notebook without ipywidgets,
where tqdm.auto would warn and write a new line of text per refresh into the saved notebook."""

import importlib.util
import sys


def bar_class():
    """tqdm.auto's bar; in a notebook without ipywidgets (where tqdm.auto would warn and write a
    new line of text per refresh into the saved notebook), a text bar drawn at its start and its
    end only."""
    if in_notebook() and importlib.util.find_spec("ipywidgets") is None:
        return _quiet_bar()
    from tqdm.auto import tqdm
    return tqdm


def in_notebook() -> bool:
    """Whether this runs in a Jupyter kernel (IPython's kernel app is configured)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def _quiet_bar():
    from tqdm import tqdm

    class QuietBar(tqdm):
        """A text bar that refreshes only when it opens and when it closes."""

        def __init__(self, *args, **kwargs):
            kwargs.update(mininterval=float("inf"), maxinterval=float("inf"))
            super().__init__(*args, **kwargs)

        def set_postfix(self, ordered_dict=None, refresh=True, **kwargs):
            super().set_postfix(ordered_dict, refresh=False, **kwargs)

        def set_postfix_str(self, s="", refresh=True):
            super().set_postfix_str(s, refresh=False)

    return QuietBar
