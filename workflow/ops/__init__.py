"""Operator tools: the CLI, doctor, demo, status, generated docs and the graph."""
