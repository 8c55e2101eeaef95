"""runtap: a recording proxy and replay analytics for the OpenAI Assistants runs API.

This directory is the `runtap` package: pyproject.toml maps it to that one import name, so the
repository keeps its top-level layout (`addon/`, `analysis/`, `cli.py`, ...) while an install
adds nothing else to site-packages. docs/ARCHITECTURE.md explains the layout.
"""
