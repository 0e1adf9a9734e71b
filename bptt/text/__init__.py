"""The character-level language model application: corpus and batches (``data``), the model
(``lm``), the training loop (``train``) and the checkpoint format (``checkpoint``). Imports
``bptt.nn``.
"""
