"""Benchmarks of the gateway against direct access, bare mitmproxy and nginx (see README.md)."""
