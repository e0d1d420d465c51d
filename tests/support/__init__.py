"""Helpers that tests and the benchmarks share (bench scripts put the repository root on sys.path)."""
