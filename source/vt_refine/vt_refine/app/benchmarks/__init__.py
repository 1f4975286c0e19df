"""Benchmarks that print figures for the README's speed and memory tables; ``scripts/benchmark_*.py`` parse the
arguments and call one function here (``vt-refine benchmark``, the env throughput, lives in ``app.benchmark``).

Each function returns a JSON-ready dict; none of them asserts a speed (figures are read, not tested).
"""
