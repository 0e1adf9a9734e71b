"""The character-level language model application: corpus, vocabulary and stream batches
(``data``), one sample per line (``lines``), the model and sampling (``lm``), the run's settings
(``config``), its changing state saved whole in the checkpoint (``state``), metrics.csv and
loss.png (``record``), the training loop (``train``) and the checkpoint format (``checkpoint``).
Imports ``bptt.nn``.
"""
