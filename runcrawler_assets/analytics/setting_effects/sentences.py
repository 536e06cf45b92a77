"""The setting effects in words: a sentence per flagged value, and the findings a manager reads.

Only what the table says is put in words here (ratios, intervals, rates and
flags computed in `tables.py`); nothing is computed again.
"""

from __future__ import annotations

import pandas as pd

from runcrawler_assets.analytics.core import NO_RUNS


def times(row: pd.Series, prefix: str, more: str, less: str) -> str:
    """`prefix`'s ratio as "1.8× more (95 % CI 1.4–2.3×)", or "less" below 1."""
    ratio, low, high = (row[f"{prefix}_ratio{s}"] for s in ("", "_ci_low", "_ci_high"))
    if ratio >= 1:
        return f"{ratio:.1f}× {more} (95 % CI {low:.1f}–{high:.1f}×)"
    return f"{1 / ratio:.1f}× {less} (95 % CI {1 / high:.1f}–{1 / low:.1f}×)"


def value_sentence(row: pd.Series) -> str:
    """What a flagged value means, in a manager's words; empty when nothing stands out."""
    parts = []
    label = f"runs with {row['setting']} = {row['value']}"
    if row["failure_flagged"]:
        parts.append(
            f"{label} fail {times(row, 'failure', 'more', 'less')} often than the same "
            f"users' other runs ({100 * row['failure_rate']:.0f} % vs "
            f"{100 * row['rest_failure_rate']:.0f} % overall, {row['finished_runs']} runs)"
        )
    if row["efficiency_flagged"]:
        parts.append(
            f"{label} need {times(row, 'efficiency', 'more', 'less')} time per node and "
            f"iteration than the same users' other runs on the same cluster and dimension "
            f"({row['successful_runs']} successful runs)"
        )
    return "; ".join(parts)


def with_sentences(table: pd.DataFrame) -> pd.DataFrame:
    """The table with a `finding` column: each value's sentence (empty when not flagged)."""
    sentences = [value_sentence(row) for _, row in table.iterrows()]
    return table.assign(finding=pd.Series(sentences, index=table.index, dtype=object))


def findings(table: pd.DataFrame) -> list[str]:
    """The flagged values that are bad news (fail more, run slower): what a manager acts on."""
    if table.empty:
        return [NO_RUNS]
    bad = table[
        (table["failure_flagged"] & (table["failure_ratio"] > 1))
        | (table["efficiency_flagged"] & (table["efficiency_ratio"] > 1))
    ]
    if bad.empty:
        return ["No setting value stands out of the noise, for failures or for efficiency."]
    return [row["finding"][0].upper() + row["finding"][1:] + "." for _, row in bad.iterrows()]
