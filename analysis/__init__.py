"""runtap's reports: polars over the DuckDB store, one pure function per report module.

`run_report(db, name, filters)` is the entry point; `REPORTS` lists the reports. The names below
are imported on first use, so the command line can import `runtap.analysis.formats` (for its
format names) without loading polars.
"""

from __future__ import annotations

import importlib

_HOMES = {
    "Filters": "runtap.analysis.filters",
    "parse_instant": "runtap.analysis.filters",
    "REPORTS": "runtap.analysis.registry",
    "ReportResult": "runtap.analysis.registry",
    "run_report": "runtap.analysis.registry",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
