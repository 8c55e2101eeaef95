"""The DuckDB store: schema (tables and views), the batched writer, readers, several stores as one, export."""
