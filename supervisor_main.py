"""Placeholder until the supervisor issue lands."""
