"""Benchmarks, run with ./scripts/bench NAME; each prints a table of ratios."""
