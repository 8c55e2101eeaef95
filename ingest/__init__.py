"""Ingest existing captures (mitmproxy flow files, HAR) into a runtap store: `ingest_files`."""

from runtap.ingest.pipeline import FileReport, IngestReport, ingest_files

__all__ = ["FileReport", "IngestReport", "ingest_files"]
