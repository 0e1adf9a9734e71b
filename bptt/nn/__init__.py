"""The engine: recurrent layers (``layers``, with ``packed_path`` for ``lengths=``) and their
time loops (``loops``, over the per-step ``blocks`` and the matrix ``products``), ``packing``
(variable-length batches), ``dropout`` (masks and their generator), ``linear``, ``embedding``,
``losses``, ``optim`` (Adam, AdamW, clipping), ``schedule`` (the learning rate by step),
``grad_mode`` (the gradient rule every layer follows, and ``no_grad``) and the shared parameter
helpers (``_params``). Imports only ``bptt.cells`` and ``bptt._checks``.
"""
