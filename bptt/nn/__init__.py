"""The engine: recurrent layers (``layers``) and their time loops (``loops``), ``linear``,
``losses``, ``optim`` and the shared parameter helpers (``_params``). Imports only ``bptt.cells``
and ``bptt._checks``.
"""
