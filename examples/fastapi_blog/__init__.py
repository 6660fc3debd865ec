"""A small FastAPI blog with its history kept by Vestige (see README.md)."""
