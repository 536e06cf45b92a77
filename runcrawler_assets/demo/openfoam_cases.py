"""What each OpenFOAM case of the demo is: who ran it, where, with which release, on
what mesh, and how it ends.

Why apart: the plan is drawn before any phenomenon (openfoam_phenomena.py) from a stream
of its own, so that a case keeps the same plan (mesh, outcome, residuals) with or without
them. The outcomes cycle through `OUTCOMES`, so that N >= len(OUTCOMES) cases hold every
kind, and four rounds of them (36 cases) hold every outcome on both release lines
(openfoam.com v2312/v2306 banners with `Version:` and a version tag on errors;
openfoam.org 11/10 with `Build :` and unit-suffixed `Time = ...s`), serial and parallel.
The clusters and users are the AVBP demo's (team.py).
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from runcrawler_assets.demo.destination import DemoArchiveError
from runcrawler_assets.demo.knobs import KNOBS
from runcrawler_assets.demo.team import CLUSTERS, USERS

# Every way a case ends, in the order the generator cycles through them.
OUTCOMES: tuple[str, ...] = (
    "none",
    "fatal_error",
    "fatal_io_error",
    "floating_point",
    "meshing",
    "time_limit",
    "truncated",
    "running",
    "not_started",
)
CASE_NAMES = ("pitzDaily", "motorBike", "elbow", "backwardFacingStep", "mixerVessel", "channel")
# Cases are set up over the demo's span; truncated ones end well before its end
# (so a crawl sees them as old), running ones start during its last two days.
LAST_DAY = datetime.combine(KNOBS.end, datetime.min.time())
SPAN_DAYS = (60, KNOBS.span_days)

SOLVER_OUTCOMES = frozenset(OUTCOMES) - {"meshing", "not_started"}
FATAL_OUTCOMES = frozenset({"fatal_error", "fatal_io_error"})
CRASH_OUTCOMES = FATAL_OUTCOMES | {"floating_point"}


@dataclass(frozen=True)
class Release:
    """A release line's way of printing: version, banner box, build line, time unit."""

    version: str
    box: str
    build: str
    time_unit: str
    quoted_host: bool


_COM_BOX = (
    "/*---------------------------------------------------------------------------*\\\n"
    "| =========                 |                                                 |\n"
    "| \\\\      /  F ield         | OpenFOAM: The Open Source CFD Toolbox           |\n"
    "|  \\\\    /   O peration     | Version:  {version:<38}|\n"
    "|   \\\\  /    A nd           | Website:  www.openfoam.com                      |\n"
    "|    \\\\/     M anipulation  |                                                 |\n"
    "\\*---------------------------------------------------------------------------*/\n"
)
_ORG_BOX = (
    "/*---------------------------------------------------------------------------*\\\n"
    "  =========                 |\n"
    "  \\\\      /  F ield         | OpenFOAM: The Open Source CFD Toolbox\n"
    "   \\\\    /   O peration     | Website:  https://openfoam.org\n"
    "    \\\\  /    A nd           | Version:  {version}\n"
    "     \\\\/     M anipulation  |\n"
    "\\*---------------------------------------------------------------------------*/\n"
)
RELEASES: tuple[Release, ...] = (
    Release(
        "v2312",
        _COM_BOX,
        "_f3950763fe-20231219 OPENFOAM=2312 patch=240220 version=v2312",
        "",
        False,
    ),
    Release("11", _ORG_BOX, "11-9ec7b30d8f0d", "s", True),
    Release("v2306", _COM_BOX, "_d3b1cfe2-20230627 OPENFOAM=2306 version=v2306", "", False),
    Release("10", _ORG_BOX, "10-c4cf895ad8fa", "s", True),
)


@dataclass
class OpenFoamCase:
    """One case being written: where, how, its phenomena, and the text of its files so far."""

    index: int
    rng: random.Random
    release: Release
    cluster: str
    host: str
    user: str
    run_path: str
    outcome: str
    n_procs: int
    transient: bool
    n_cells: int
    n_points: int
    created_at: datetime
    # Logs and scheduler outputs by name: their text and modification time (None: now).
    files: dict[str, tuple[str, datetime | None]] = field(default_factory=dict)
    # The phenomena this case got, and the stream their details are drawn from.
    mess: frozenset[str] = frozenset()
    mess_rng: random.Random = field(default_factory=random.Random)
    deciding_log: str | None = None
    # Its batch job (cases whose solver runs): the id, when the solver started, how long
    # the user expected it to run.
    job_id: int | None = None
    solver_started: datetime | None = None
    planned_s: float | None = None

    def has(self, phenomenon: str) -> bool:
        return phenomenon in self.mess

    @property
    def org(self) -> bool:
        return self.release.box is _ORG_BOX

    @property
    def application(self) -> str:
        if self.org:
            return "foamRun"
        return "pimpleFoam" if self.transient else "simpleFoam"

    @property
    def runs_parallel(self) -> bool:
        """The solver ran as one MPI job (`-parallel`), not as serial copies."""
        return self.n_procs > 1 and not self.has("serial_copies")

    @property
    def solver_n_procs(self) -> int:
        return self.n_procs if self.runs_parallel else 1

    @property
    def case_dir(self) -> str:
        login = re.sub(r"[^\w.-]", "", self.user)
        name = self.run_path.rsplit("/", 1)[-1]
        if self.has("windows_paths"):
            return f"C:\\Users\\{login}\\OpenFOAM\\run\\{name}"
        return f"/scratch/{login}/{name}"

    def path(self, *parts: str) -> str:
        """A file of the case as the solver prints it (backslashes on Windows)."""
        separator = "\\" if self.has("windows_paths") else "/"
        return separator.join((self.case_dir, *parts))

    @property
    def version_tag(self) -> str:
        """openfoam.com tags error headers with its version; openfoam.org does not."""
        return "" if self.org else f" (openfoam-{self.release.version[1:]})"


def plan_case(root: Path, index: int, seed: int) -> OpenFoamCase:
    """Who ran case `index`, where, on what mesh, and how it ends (before any phenomenon)."""
    rng = random.Random(f"{seed}:openfoam:{index}")
    user = USERS[index % len(USERS)]
    cluster = next(c for c in CLUSTERS if c.name == user.home_cluster)
    name = f"{rng.choice(CASE_NAMES)}_{index:03d}"
    run_path = f"{cluster.name}/{user.login}/openfoam/{name}"
    if root.joinpath(*run_path.split("/")).exists():
        raise DemoArchiveError(f"{root / run_path} exists; give a new or demo-only archive")
    outcome = OUTCOMES[index % len(OUTCOMES)]
    # Round m of OUTCOMES shifts the releases by m and flips serial/parallel every second
    # round, so that 4 rounds hold every outcome with both release lines, serial and parallel.
    rounds = index // len(OUTCOMES)
    parallel = (rounds // 2 + index % len(OUTCOMES)) % 2 == 1
    days_before_end = rng.randrange(1, 2) if outcome == "running" else rng.randrange(*SPAN_DAYS)
    created = LAST_DAY - timedelta(
        days=days_before_end, hours=rng.randrange(0, 12), minutes=rng.randrange(60)
    )
    n_cells = rng.choice((12_225, 250_000, 1_200_000, 4_800_000))
    return OpenFoamCase(
        index=index,
        rng=rng,
        release=RELEASES[(rounds + index % len(OUTCOMES)) % len(RELEASES)],
        cluster=cluster.name,
        host=cluster.host_format.format(n=rng.randrange(1, 999), a=1, b=2, c=3),
        user=user.login,
        run_path=run_path,
        outcome=outcome,
        n_procs=_n_procs(rng, n_cells) if parallel else 1,
        transient=rng.random() < 0.5,
        n_cells=n_cells,
        n_points=int(n_cells * 1.07) + 1000,
        created_at=created,
    )


def _n_procs(rng: random.Random, n_cells: int) -> int:
    """A parallel run's processes: a power of two near 20k to 100k cells each."""
    wanted = n_cells / rng.choice((20_000, 50_000, 100_000))
    return min(max(2, 2 ** round(math.log2(max(wanted, 1)))), 512)
