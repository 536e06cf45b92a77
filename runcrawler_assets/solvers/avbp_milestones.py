"""The AVBP milestone table: the one place that says which log line means which stage.

The parser (avbp.py) and the demo generator both read this table, so a
stage code cannot drift between what is written and what is parsed. The
order is the order in which AVBP prints the milestones (archive-format.md);
`End of AVBP session` is success, code 0, although it is printed last.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Milestone:
    """One milestone line: its text (a substring of the log line), stage code and label."""

    text: str
    code: int
    label: str


MILESTONES: tuple[Milestone, ...] = (
    Milestone("Reading run parameters", 110, "reading parameters"),
    Milestone("Reading boundary conditions", 120, "parameters ok, boundary conditions"),
    Milestone("Info on initial grid", 130, "boundary ok, reading grid"),
    Milestone("Writes full parameters file", 140, "grid ok, initial solution"),
    Milestone("Info on initial solution", 150, "initial solution ok, solutbound"),
    Milestone("Reading probe coordinates file", 160, "solutbound ok, probes"),
    Milestone("Writing probe reference file", 210, "probes ok, wall distances"),
    Milestone("Wall distances stored in file", 290, "wall distances ok, preprocessing"),
    Milestone("Starts the temporal loop", 300, "in the temporal loop"),
    Milestone("Integral values for boundary patches", 900, "loop finished, wrap-up"),
    Milestone("End of AVBP session", 0, "success"),
)
