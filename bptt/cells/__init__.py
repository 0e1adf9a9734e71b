"""Cell math: one module per cell kind, each equation of a step once, beside its derivative.

The functions work on pre-activations that the caller has already projected (the matmuls belong to
the caller), write into buffers the caller owns (``out=``), and keep no state. The fast engine
(``bptt.loops``) and the course-notation API (``bptt.stepwise``) both call them.
"""
