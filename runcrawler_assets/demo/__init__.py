"""The demo archive generator (AVBP runs and OpenFOAM cases) and its truth.

Import what you need from here; the modules behind it each do one job:

- team.py: the clusters, the users and their habits, their projects
- knobs.py: every effect the archive holds, by name (`DemoKnobs`, `KNOBS`)
- archive.py: `generate_archive`, the AVBP runs of a demo archive (planned in
  avbp_planning.py, written by avbp_writer.py and the avbp_* modules it names);
  linked_copies.py: big archives, most runs hard links to a few rendered ones
- openfoam_writer.py: `write_openfoam_cases`, OpenFOAM cases added to an archive
  (openfoam_cases.py, openfoam_phenomena.py and the openfoam_* modules they name)
- truth.py, destination.py, files.py, launchers.py: what both generators share
- jobs.py: the Slurm job ids (unique per cluster) and jobs of both generators;
  accounting.py: the accounting dumps (`sacct`, printed by sacct_dump.py) of those
  jobs and what the join with them must show

Plain Python: importing it loads neither Dagster nor pandas.
"""

from runcrawler_assets.demo.accounting import (
    ACCOUNTING_FIELDS,
    UNARCHIVED_FIELDS,
    Accounting,
    AccountingDumps,
    unarchived_path,
)
from runcrawler_assets.demo.archive import DemoSummary, default_templates, generate_archive
from runcrawler_assets.demo.destination import (
    DemoArchiveError,
    check_accounting_destination,
    check_destination,
)
from runcrawler_assets.demo.jobs import JobIds
from runcrawler_assets.demo.knobs import KNOBS, DemoKnobs
from runcrawler_assets.demo.openfoam_phenomena import PHENOMENA, PHENOMENON_NAMES, Phenomenon
from runcrawler_assets.demo.openfoam_writer import (
    GeneratedCase,
    generate_openfoam_cases,
    write_openfoam_cases,
)
from runcrawler_assets.demo.team import CLUSTERS, USERS, Cluster, UserHabits
from runcrawler_assets.demo.truth import TRUTH_FIELDS

__all__ = [
    "ACCOUNTING_FIELDS",
    "CLUSTERS",
    "KNOBS",
    "PHENOMENA",
    "PHENOMENON_NAMES",
    "TRUTH_FIELDS",
    "UNARCHIVED_FIELDS",
    "USERS",
    "Accounting",
    "AccountingDumps",
    "Cluster",
    "DemoArchiveError",
    "DemoKnobs",
    "DemoSummary",
    "GeneratedCase",
    "JobIds",
    "Phenomenon",
    "UserHabits",
    "check_accounting_destination",
    "check_destination",
    "default_templates",
    "generate_archive",
    "generate_openfoam_cases",
    "unarchived_path",
    "write_openfoam_cases",
]
