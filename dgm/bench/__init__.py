"""Benchmarks: sets of SWE-bench-style tasks. They know nothing about evolution."""
