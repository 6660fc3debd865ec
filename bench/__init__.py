"""Benchmarks: ./scripts/bench NAME runs bench/NAME.py and prints a ratio table."""
