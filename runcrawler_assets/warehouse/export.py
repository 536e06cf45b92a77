"""Export a warehouse table to a file any tool reads: Parquet, CSV or JSON lines.

For the clients that cannot open DuckDB (spreadsheets, R without the duckdb
package, a colleague's laptop). DuckDB's own COPY writes the file, so types
survive: Parquet keeps them all; CSV and JSON read back equal when given the
table's types (CSV writes NULL as nothing and an empty string as `""`). The
warehouse is opened read-only, like `load_runs`. The table
name is checked against the tables that exist and the path is a bound
parameter: nothing a user types is pasted into SQL.
"""

from __future__ import annotations

from pathlib import Path

from runcrawler_assets.errors import RuncrawlerError
from runcrawler_assets.warehouse.accounting_join import table_names
from runcrawler_assets.warehouse.database import LOCK_RETRY_SECONDS, quote_identifier
from runcrawler_assets.warehouse.explore import connect_read_only, warehouse_path

# Format -> (file extension, COPY options). JSON is one object per line, which
# pandas (`read_json(lines=True)`), DuckDB and jq read as it streams.
EXPORT_FORMATS: dict[str, tuple[str, str]] = {
    "parquet": ("parquet", "FORMAT parquet"),
    "csv": ("csv", "FORMAT csv, HEADER true"),
    "json": ("jsonl", "FORMAT json"),
}


class ExportError(RuncrawlerError, ValueError):
    """An export a user asked for that cannot be done; the message says what would work."""


def default_export_path(data_dir: str | Path | None, table: str, fmt: str) -> Path:
    """`<data>/exports/<table>.<ext>`: beside the warehouse, never inside the archive."""
    return warehouse_path(data_dir).parent / "exports" / f"{table}.{EXPORT_FORMATS[fmt][0]}"


def export_table(
    data_dir: str | Path | None = None,
    table: str = "runs",
    fmt: str = "parquet",
    out: str | Path | None = None,
    wait: float = LOCK_RETRY_SECONDS,
) -> Path:
    """Write `table` of the warehouse under `data_dir` to `out` in `fmt`; returns the file written.

    Raises `ExportError` for an unknown format or table, `FileNotFoundError`
    before the first crawl, `WarehouseLockedError` while a writer holds the file.
    """
    if fmt not in EXPORT_FORMATS:
        raise ExportError(f"unknown format {fmt!r}; choose one of: {', '.join(EXPORT_FORMATS)}")
    with connect_read_only(data_dir, wait) as con:
        tables = sorted(table_names(con))
        if table not in tables:
            raise ExportError(f"no table {table!r} in the warehouse; tables: {', '.join(tables)}")
        path = Path(out) if out is not None else default_export_path(data_dir, table, fmt)
        path.parent.mkdir(parents=True, exist_ok=True)
        options = EXPORT_FORMATS[fmt][1]
        con.execute(f"COPY {quote_identifier(table)} TO $path ({options})", {"path": str(path)})
    return path.absolute()
