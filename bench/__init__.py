"""Benchmarks of the shop beside its baselines; run with `make bench`."""
