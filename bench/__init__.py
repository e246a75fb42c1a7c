"""Benchmark of the eSputnik token sync: bulk-seeded warehouses, the real Dagster CLI, a baseline.

Run ``python -m bench --help``. Results are printed as tables and kept as JSON under
``bench/results/`` (git-ignored).
"""
