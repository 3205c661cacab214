"""Benchmarks run by hand (``python -m bench.<name>``); the product never imports them."""
