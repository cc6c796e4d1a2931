"""Dashboards, recording and alert rules, proven against a real Prometheus."""
