"""How results look in the Dagster UI: tables as tables, charts as inline images."""

import base64
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from dagster import MetadataValue, TableColumn, TableRecord, TableSchema

TABLE_ROWS = 50


def _cell(value: object) -> str | int | float | bool | None:
    """A value TableRecord accepts: NaN and NA become None, the rest stays typed or text."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple | np.ndarray):  # a list column: changed keywords, runs
        return ", ".join(str(item) for item in value)
    if hasattr(value, "item"):  # numpy scalars
        return _cell(value.item())
    return str(value)


def _column_type(dtype: object) -> str:
    kind = getattr(dtype, "kind", "O")
    return {"i": "int", "u": "int", "f": "float", "b": "bool"}.get(kind, "string")


def table(frame: pd.DataFrame, limit: int = TABLE_ROWS) -> MetadataValue:
    """The first `limit` rows of a frame as a Dagster table."""
    schema = TableSchema(
        columns=[TableColumn(str(c), _column_type(frame[c].dtype)) for c in frame.columns]
    )
    records = [
        TableRecord({str(c): _cell(v) for c, v in row.items()})
        for row in frame.head(limit).to_dict("records")
    ]
    return MetadataValue.table(records=records, schema=schema)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> MetadataValue:
    """A small preview as a markdown table (cells escaped for `|` and newlines)."""

    def cell(value: object) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return MetadataValue.md("\n".join(lines))


def chart(png: bytes, title: str) -> MetadataValue:
    """A PNG shown inline: the UI has no image type, but renders data URLs in markdown."""
    encoded = base64.b64encode(png).decode("ascii")
    return MetadataValue.md(f"![{title}](data:image/png;base64,{encoded})")


def findings(sentences: Sequence[str]) -> MetadataValue:
    return MetadataValue.md("\n".join(f"- {s}" for s in sentences) or "_nothing to report_")
