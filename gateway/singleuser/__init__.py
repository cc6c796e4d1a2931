"""Lightweight mode: the gateway as the hub's single-user server on PORT (no Jupyter)."""
