"""The milestones of an AVBP log: the one table the parser and the demo generator share.

A failed run is located by the last milestone its log printed (archive-format.md):
the parser matches `text` as a case-insensitive substring of a log line, the demo
generator prints it. Keeping the table here means both read the same codes and labels.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Milestone:
    """One line the solver prints on its way: its text, stage code and stage label."""

    text: str
    code: int
    label: str


SUCCESS_CODE = 0  # the end marker's: a run that printed it succeeded

# In the order the solver prints them; the last one is the end marker (SUCCESS_CODE).
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
