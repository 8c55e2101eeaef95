"""Capture: turn mitmproxy flows on Assistants runs routes into store rows (routes, SSE, decoding, normalization, the addon)."""
