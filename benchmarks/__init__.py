"""Benchmarks comparing skyloft with Ray, Dask and a local process floor.

Run everything with ``python benchmarks/run.py``; see ``docs/benchmarks.md``.
"""
