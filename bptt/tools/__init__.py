"""Measuring tools: the benchmark (``bench``), the course-style reference loops it compares
against (``naive``) and the engine's GEMMs alone (``floor``). Imports ``bptt.nn``.
"""
