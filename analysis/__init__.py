"""runtap's reports: polars over the DuckDB store, one pure function per report module.

`run_report(db, name, filters)` is the entry point; `REPORTS` lists the reports.
"""

from runtap.analysis.filters import Filters, parse_instant
from runtap.analysis.registry import REPORTS, ReportResult, run_report

__all__ = ["REPORTS", "Filters", "ReportResult", "parse_instant", "run_report"]
