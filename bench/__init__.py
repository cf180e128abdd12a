"""Benchmarks (not tests: pytest's testpaths leave this package out)."""
