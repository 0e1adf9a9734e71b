"""Cell math: one module per cell kind, each equation of a step once, beside its derivative.

The functions work on pre-activations that the caller has already projected (the matmuls belong to
the caller), write into buffers the caller owns (``out=``), and keep no state. Arrays are
features first, then the batch, as in the course notation: a state is (H, B), gate
pre-activations are (G, H, B) with the gates on axis 0. The fast engine
(``bptt.nn.loops``) and the course-notation API (``bptt.stepwise``) both call them.
"""
