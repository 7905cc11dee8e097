"""Reproducible benchmarks that print Markdown tables: `python -m bench [NAME ...]`."""
