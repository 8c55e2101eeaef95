"""Capture: mitmproxy flows on Assistants runs routes into store rows.

Routes, SSE, decoding, normalization, and the mitmproxy addon itself.
"""
