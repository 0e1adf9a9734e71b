"""The engine: recurrent layers (``layers``) and their time loops (``loops``), ``dropout`` (masks
and their generator), ``linear``, ``embedding``, ``losses``, ``optim`` (Adam, AdamW, clipping),
``schedule`` (the learning rate by step), ``grad_mode`` (the gradient rule every layer follows,
and ``no_grad``) and the shared parameter helpers (``_params``). Imports
only ``bptt.cells`` and ``bptt._checks``.
"""
