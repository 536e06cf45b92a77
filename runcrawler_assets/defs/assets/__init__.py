"""Thin Dagster wrappers over the core: each asset reads, calls the core, writes, reports."""
