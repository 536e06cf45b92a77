"""The OpenFOAM parser: hand-written logs of both release lines, the dictionaries, the record."""

# The log samples are verbatim OpenFOAM output: long lines and trailing spaces included.
# ruff: noqa: E501, W291

from __future__ import annotations

import gzip
import os
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from runcrawler_assets.archive.discovery import list_partitions
from runcrawler_assets.config import Config
from runcrawler_assets.crawl import crawl_into_warehouse
from runcrawler_assets.demo import generate_archive, write_openfoam_cases
from runcrawler_assets.demo.openfoam_cases import OUTCOMES
from runcrawler_assets.records import Status
from runcrawler_assets.solvers import parse_run, parser_for
from runcrawler_assets.solvers.logtext import DEFAULT_LIMITS
from runcrawler_assets.solvers.openfoam.dictionaries import flatten, parse_dictionary
from runcrawler_assets.solvers.openfoam.log import categorize
from runcrawler_assets.solvers.openfoam.parser import OpenFoamParser
from runcrawler_assets.solvers.openfoam.stages import (
    DECOMPOSITION,
    MESHING,
    SOLVER_LOOP,
    SOLVER_START,
    SUCCESS,
)
from runcrawler_assets.warehouse.database import connect

NOW = datetime(2024, 3, 20, 12, 0, 0)
LONG_AGO = NOW - timedelta(days=30)

COM_BOX = """\
/*---------------------------------------------------------------------------*\\
| =========                 |                                                 |
| \\\\      /  F ield         | OpenFOAM: The Open Source CFD Toolbox           |
|  \\\\    /   O peration     | Version:  v2312                                 |
|   \\\\  /    A nd           | Website:  www.openfoam.com                      |
|    \\\\/     M anipulation  |                                                 |
\\*---------------------------------------------------------------------------*/
Build  : _f3950763fe-20231219 OPENFOAM=2312 patch=240220 version=v2312
Arch   : "LSB;label=32;scalar=64"
"""
ORG_BOX = """\
/*---------------------------------------------------------------------------*\\
  =========                 |
  \\\\      /  F ield         | OpenFOAM: The Open Source CFD Toolbox
   \\\\    /   O peration     | Website:  https://openfoam.org
    \\\\  /    A nd           | Version:  11
     \\\\/     M anipulation  |
\\*---------------------------------------------------------------------------*/
Build  : 11-9ec7b30d8f0d
"""


def banner(box: str, command: str, n_procs: int | None, host: str = "kraken-node0042") -> str:
    """The banner an application prints, .com (unquoted host) or .org (quoted host) style."""
    quoted = f'"{host}"' if box is ORG_BOX else host
    lines = [
        box.rstrip("\n"),
        f"Exec   : {command}",
        "Date   : Mar 12 2024",
        "Time   : 14:02:33",
        f"Host   : {quoted}",
        "PID    : 12345",
        "I/O    : uncollated",
        "Case   : /scratch/jdupont/pitzDaily",
    ]
    if n_procs is not None:
        lines.append(f"nProcs : {n_procs}")
    lines += [
        "sigFpe : Enabling floating point exception trapping (FOAM_SIGFPE).",
        "",
        "// * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * //",
        "Create time",
        "",
        "Create mesh for time = 0",
        "",
    ]
    return "\n".join(lines) + "\n"


def time_loop(steps: int, dt: float = 1.0, unit: str = "", rank: str = "") -> str:
    out = ["Starting time loop", ""]
    for step in range(1, steps + 1):
        out += [
            f"{rank}Time = {step * dt:g}{unit}",
            "",
            "smoothSolver:  Solving for Ux, Initial residual = 1, Final residual = 0.05, "
            "No Iterations 1",
            "GAMG:  Solving for p, Initial residual = 1, Final residual = 0.008, No Iterations 4",
            "time step continuity errors : sum local = 0.5, global = -1e-17, cumulative = -1e-17",
            f"ExecutionTime = {0.25 * step:.2f} s  ClockTime = {step} s",
            "",
        ]
    return "\n".join(out) + "\n"


END = "End\n\n"
FATAL_FILE_COM = """\
--> FOAM FATAL ERROR: (openfoam-2312 patch=240220)
cannot find file "/scratch/jdupont/pitzDaily/0/U"

    From virtual Foam::autoPtr<Foam::ISstream> Foam::fileOperations::uncollatedFileOperation::readStream(Foam::regIOobject&, const Foam::fileName&, const Foam::word&, bool) const
    in file global/fileOperations/uncollatedFileOperation/uncollatedFileOperation.C at line 542.

FOAM exiting

"""
FATAL_IO_ORG = """\
--> FOAM FATAL IO ERROR: 
keyword deltaT is undefined in dictionary "/scratch/jdupont/pitzDaily/system/controlDict"

file: /scratch/jdupont/pitzDaily/system/controlDict from line 17 to line 49.

    From function const Foam::entry& Foam::dictionary::lookupEntry(const Foam::word&, bool, bool) const
    in file db/dictionary/dictionary.C at line 797.

FOAM exiting

"""
FPE_PARALLEL = """\
[2] #0  Foam::error::printStack(Foam::Ostream&) at ??:?
[2] #1  Foam::sigFpe::sigHandler(int) at ??:?
[2] #2  ? in /lib/x86_64-linux-gnu/libc.so.6
[2] #3  Foam::divide(Foam::Field<double>&, Foam::UList<double> const&, Foam::UList<double> const&) at ??:?
[2] #4  Foam::GAMGSolver::scale(Foam::Field<double>&) const at ??:?
--------------------------------------------------------------------------
mpirun noticed that process rank 2 with PID 0 on node kraken-node0042 exited on signal 8 (Floating point exception).
--------------------------------------------------------------------------
"""
CONTROL_DICT = """\
FoamFile
{
    version     2.0;
    format      ascii;
    class       dictionary;
    object      controlDict;
}
// * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * //

application     simpleFoam;
startFrom       startTime;
startTime       0;
stopAt          endTime;
endTime         2000;
deltaT          1;
writeControl    timeStep;
writeInterval   100;   // every 100 iterations
/* functions are
   not read by runcrawler's typed settings */
functions
{
    #includeFunc residuals
    forces { type forces; patches ("wall.*"); CofR (0 0 0); }
}
"""
FV_SCHEMES = """\
FoamFile { version 2.0; format ascii; class dictionary; object fvSchemes; }
ddtSchemes { default steadyState; }
gradSchemes { default Gauss linear; }
divSchemes
{
    default         none;
    div(phi,U)      bounded Gauss linearUpwind grad(U);
    div(phi,k)      bounded Gauss limitedLinear 1;
    div((nuEff*dev2(T(grad(U))))) Gauss linear;
}
"""
DECOMPOSE = "numberOfSubdomains 4;\nmethod          scotch;\n"
TURBULENCE = "simulationType RAS;\nRAS\n{\n    RASModel kOmegaSST;\n    turbulence on;\n}\n"
MOMENTUM_LES = "simulationType LES;\nLES\n{\n    model WALE;\n    delta cubeRootVol;\n}\n"
CHECK_MESH = """\
Mesh stats
    points:           25012
    faces:            49180
    internal faces:   24170
    cells:            12225
    faces per cell:   6
    boundary patches: 6

Checking geometry...
    Overall domain bounding box (-0.0206 -0.0254 -0.0005) (0.29 0.0254 0.0005)
    Mesh has 2 geometric (non-empty/wedge) directions (1 1 0)
    Mesh has 2 solution (non-empty) directions (1 1 0)

Mesh OK.

End

"""


def write(path: Path, text: str | bytes, mtime: datetime = LONG_AGO) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    os.utime(path, (mtime.timestamp(), mtime.timestamp()))
    return path


def make_case(root: Path, name: str = "pitzDaily", **files: str | bytes) -> Path:
    """A case under root/<cluster>/<user>/ with its dictionaries and the given top-level files."""
    case = root / "kraken" / "jdupont" / "cases" / name
    write(case / "system" / "controlDict", CONTROL_DICT)
    write(case / "system" / "fvSchemes", FV_SCHEMES)
    write(case / "system" / "decomposeParDict", DECOMPOSE)
    write(case / "constant" / "turbulenceProperties", TURBULENCE)
    for index, (file_name, text) in enumerate(files.items()):
        write(case / file_name, text, LONG_AGO + timedelta(minutes=index))
    return case


def parse(case: Path, root: Path):
    return OpenFoamParser().parse(case, root, NOW)


# ---------------------------------------------------------------- detection


def test_a_case_is_detected_by_its_control_dict(tmp_path: Path) -> None:
    case = make_case(tmp_path)
    assert parser_for(case).name == "openfoam"
    assert parser_for(case / "system") is None


# ---------------------------------------------------------------- success, both release lines


def test_parallel_openfoam_com_success_reads_banner_loop_and_timing(tmp_path: Path) -> None:
    log = banner(COM_BOX, "simpleFoam -parallel", 4) + time_loop(20) + END
    case = make_case(tmp_path, **{"log.checkMesh": CHECK_MESH, "log.simpleFoam": log})
    record = parse(case, tmp_path)
    assert record.solver == "openfoam"
    assert record.solver_version == "v2312"
    assert record.status == "success"
    assert record.error_category == "none"
    assert (record.stage_code, record.stage) == (SUCCESS.code, SUCCESS.label)
    assert record.started_at == datetime(2024, 3, 12, 14, 2, 33)
    assert record.ended_at == datetime(2024, 3, 12, 14, 2, 53)
    assert record.host == "kraken-node0042"
    assert record.n_procs == 4
    assert record.iterations_done == 20
    assert record.wall_time_s == 20
    assert record.cpu_time_s == pytest.approx(5.0 * 4)
    assert record.cpu_hours == pytest.approx(20 / 3600)
    assert (record.n_cells, record.n_nodes, record.dimension) == (12225, 25012, 2)
    assert record.efficiency == pytest.approx(20 * 4 / (20 * 25012))
    assert record.log_path == "kraken/jdupont/cases/pitzDaily/log.simpleFoam"
    assert record.parse_warnings == ()


def test_serial_openfoam_org_11_success_reads_version_and_unit_suffixed_times(
    tmp_path: Path,
) -> None:
    log = banner(ORG_BOX, "foamRun -solver incompressibleFluid", 1) + time_loop(5, 0.5, "s")
    case = make_case(tmp_path, **{"log.foamRun": log + END})
    write(case / "system" / "controlDict", CONTROL_DICT.replace("simpleFoam", "foamRun"))
    record = parse(case, tmp_path)
    assert record.solver_version == "11"
    assert record.host == "kraken-node0042"
    assert record.status == "success"
    assert record.n_procs == 1
    assert record.iterations_done == 5
    assert record.cpu_time_s == pytest.approx(1.25)


def test_a_banner_without_nprocs_is_a_serial_run(tmp_path: Path) -> None:
    log = banner(ORG_BOX, "simpleFoam", None) + time_loop(2) + END
    record = parse(make_case(tmp_path, **{"log.simpleFoam": log}), tmp_path)
    assert record.n_procs == 1


def test_the_build_line_gives_the_version_when_the_box_is_missing(tmp_path: Path) -> None:
    box = "Build  : 11-9ec7b30d8f0d\n"
    log = banner(box, "simpleFoam", 1) + time_loop(2) + END
    assert parse(make_case(tmp_path, **{"log.simpleFoam": log}), tmp_path).solver_version == "11"


# ---------------------------------------------------------------- failures


def test_fatal_error_message_lines_are_the_error_message(tmp_path: Path) -> None:
    log = banner(COM_BOX, "simpleFoam", 1) + FATAL_FILE_COM
    record = parse(make_case(tmp_path, **{"log.simpleFoam": log}), tmp_path)
    assert record.status == "failed"
    assert record.error_category == "input_file"
    assert record.error_message == (
        'FOAM FATAL ERROR: cannot find file "/scratch/jdupont/pitzDaily/0/U"'
    )
    assert record.error_signature == 'FOAM FATAL ERROR: cannot find file "<path>"'
    assert (record.stage_code, record.iterations_done) == (SOLVER_START.code, 0)
    # The log's mtime is older than the banner's start (a copy's time): no end, no duration.
    assert (record.ended_at, record.wall_time_s, record.timing_source) == (None, None, None)


def test_fatal_io_error_on_a_missing_keyword_is_an_input_file_error(tmp_path: Path) -> None:
    log = banner(ORG_BOX, "simpleFoam", 1) + FATAL_IO_ORG
    record = parse(make_case(tmp_path, **{"log.simpleFoam": log}), tmp_path)
    assert record.error_category == "input_file"
    assert record.error_message.startswith("FOAM FATAL IO ERROR: keyword deltaT is undefined")


def test_parallel_floating_point_exception_is_numerical_instability(tmp_path: Path) -> None:
    log = banner(COM_BOX, "simpleFoam -parallel", 4) + time_loop(7, rank="") + FPE_PARALLEL
    record = parse(make_case(tmp_path, **{"log.simpleFoam": log}), tmp_path)
    assert record.status == "failed"
    assert record.error_category == "numerical_instability"
    assert record.error_message == "Floating point exception (sigFpe) in Foam::divide"
    assert (record.stage_code, record.iterations_done) == (SOLVER_LOOP.code, 7)
    assert record.wall_time_s == 7


def test_a_serial_fpe_without_stack_is_still_numerical_instability(tmp_path: Path) -> None:
    crash = "Floating point exception (core dumped)\n"
    log = banner(ORG_BOX, "simpleFoam", 1) + time_loop(3) + crash
    record = parse(make_case(tmp_path, **{"log.simpleFoam": log}), tmp_path)
    assert record.error_category == "numerical_instability"
    assert record.error_message == "Floating point exception (core dumped)"


def test_time_limit_in_the_scheduler_output_kills_the_run(tmp_path: Path) -> None:
    log = banner(COM_BOX, "pimpleFoam -parallel", 8) + time_loop(4, 1e-5)
    kill = (
        "slurmstepd: error: *** JOB 2001234 ON kraken-node0042 CANCELLED AT "
        "2024-03-13T14:02:40 DUE TO TIME LIMIT ***\n"
    )
    case = make_case(tmp_path, **{"log.pimpleFoam": log, "slurm-2001234.out": kill})
    write(case / "system" / "controlDict", CONTROL_DICT.replace("simpleFoam", "pimpleFoam"))
    record = parse(case, tmp_path)
    assert (record.status, record.error_category) == ("killed", "time_limit")
    assert record.ended_at == datetime(2024, 3, 13, 14, 2, 40)
    assert record.timing_source == "scheduler"
    assert record.iterations_done == 4
    assert record.stage_code == SOLVER_LOOP.code


def test_a_failed_snappy_hex_mesh_is_the_failure_of_a_case_whose_solver_never_ran(
    tmp_path: Path,
) -> None:
    block = banner(COM_BOX, "blockMesh", 1) + "  nPoints: 1331\n  nCells: 1000\n" + END
    snappy = (
        banner(COM_BOX, "snappyHexMesh -overwrite", 1)
        + "Refined mesh : cells:24000  faces:76000  points:27000\n"
        + "--> FOAM FATAL ERROR: (openfoam-2312)\n"
        + "Point (0.5 10 0.2) is not inside the mesh or on a face or edge.\n\n"
        + "    From Foam::label Foam::meshRefinement::findRegion(...)\n\nFOAM exiting\n"
    )
    case = make_case(tmp_path, **{"log.blockMesh": block, "log.snappyHexMesh": snappy})
    record = parse(case, tmp_path)
    assert record.status == "failed"
    assert (record.stage_code, record.stage) == (MESHING.code, MESHING.label)
    assert record.error_message.startswith("FOAM FATAL ERROR: Point (0.5 10 0.2) is not inside")
    assert record.log_path.endswith("log.snappyHexMesh")
    assert (record.n_cells, record.n_nodes) == (24000, 27000)


def test_a_meshed_and_decomposed_case_without_solver_log_is_not_started(tmp_path: Path) -> None:
    block = banner(COM_BOX, "blockMesh", 1) + "  nPoints: 1331\n  nCells: 1000\n" + END
    decompose = banner(COM_BOX, "decomposePar", 1) + "Time = 0\n" + END
    case = make_case(tmp_path, **{"log.blockMesh": block, "log.decomposePar": decompose})
    record = parse(case, tmp_path)
    assert record.status == "not_started"
    assert record.error_category is None
    assert (record.stage_code, record.n_cells) == (DECOMPOSITION.code, 1000)


def test_a_case_without_any_log_is_not_started(tmp_path: Path) -> None:
    record = parse(make_case(tmp_path), tmp_path)
    assert (record.status, record.stage_code, record.iterations_done) == ("not_started", None, 0)


def test_a_recent_log_without_end_is_running_an_old_one_truncated(tmp_path: Path) -> None:
    log = banner(COM_BOX, "simpleFoam", 1) + time_loop(3)
    case = make_case(tmp_path, **{"log.simpleFoam": log})
    assert parse(case, tmp_path).status == "truncated"
    write(case / "log.simpleFoam", log, NOW - timedelta(hours=1))
    assert parse(case, tmp_path).status == "running"


def test_solver_output_in_the_scheduler_file_is_read_as_the_solver_log(tmp_path: Path) -> None:
    text = (
        "Running blockMesh on /scratch/jdupont/pitzDaily\n"
        + banner(ORG_BOX, "blockMesh", 1)
        + "  nPoints: 1331\n  nCells: 1000\n"
        + END
        + banner(ORG_BOX, "simpleFoam", 1)
        + time_loop(6)
        + END
    )
    record = parse(make_case(tmp_path, **{"slurm-77.out": text}), tmp_path)
    assert (record.status, record.iterations_done, record.n_cells) == ("success", 6, 1000)
    assert record.log_path.endswith("slurm-77.out")


def test_a_success_wins_over_an_earlier_fatal_error_in_another_log(tmp_path: Path) -> None:
    failed = banner(COM_BOX, "simpleFoam", 1) + FATAL_FILE_COM
    good = banner(COM_BOX, "simpleFoam", 1) + time_loop(2) + END
    case = make_case(tmp_path, **{"log.simpleFoam.1": failed, "log.simpleFoam": good})
    record = parse(case, tmp_path)
    assert (record.status, record.n_restarts) == ("success", 1)


def test_a_gzipped_crlf_log_with_invalid_utf8_is_read(tmp_path: Path) -> None:
    text = (banner(COM_BOX, "simpleFoam", 1) + time_loop(3) + END).replace("\n", "\r\n")
    raw = gzip.compress(text.encode() + b"\xff\xfe broken\r\n")
    record = parse(make_case(tmp_path, **{"log.simpleFoam.gz": raw}), tmp_path)
    assert (record.status, record.iterations_done) == ("success", 3)


def test_a_huge_log_is_read_within_the_bounds(tmp_path: Path) -> None:
    head = banner(COM_BOX, "simpleFoam", 1) + time_loop(1)
    body = time_loop(1).split("Starting time loop\n\n", 1)[1] * 40_000
    log = head + body + FATAL_FILE_COM
    case = make_case(tmp_path, **{"log.simpleFoam": log})
    assert (case / "log.simpleFoam").stat().st_size > DEFAULT_LIMITS.max_plain_bytes
    record = parse(case, tmp_path)
    assert record.error_category == "input_file"
    assert any("not read" in w for w in record.parse_warnings)


def test_an_unreadable_log_is_a_warning_not_an_exception(tmp_path: Path) -> None:
    case = make_case(tmp_path)
    os.mkfifo(case / "log.simpleFoam")
    record = parse(case, tmp_path)
    assert record.status == "not_started"
    assert any("not a regular file" in w for w in record.parse_warnings)


# ---------------------------------------------------------------- settings


def test_dictionaries_become_params_and_typed_settings(tmp_path: Path) -> None:
    log = banner(COM_BOX, "simpleFoam", 1) + time_loop(1) + END
    record = parse(make_case(tmp_path, **{"log.simpleFoam": log}), tmp_path)
    assert record.params["controldict.application"] == "simpleFoam"
    assert record.params["controldict.writeinterval"] == "100"
    assert record.params["controldict.functions.forces.patches"] == '("wall.*")'
    assert record.params["fvschemes.divschemes.div(phi,u)"] == "bounded Gauss linearUpwind grad(U)"
    assert record.params["decomposepardict.method"] == "scotch"
    assert "controldict.foamfile.version" not in record.params
    assert record.iterations_requested == 2000
    assert record.les_model == "komegasst"
    assert record.convection_scheme == "bounded gauss linearupwind grad(u)"
    assert record.created_at is not None


def test_momentum_transport_les_model_and_adjustable_time_step(tmp_path: Path) -> None:
    case = make_case(tmp_path)
    write(case / "constant" / "momentumTransport", MOMENTUM_LES)
    write(
        case / "system" / "controlDict",
        CONTROL_DICT.replace("deltaT          1;", "deltaT 1e-5;\nadjustTimeStep yes;\nmaxCo 0.8;"),
    )
    record = parse(case, tmp_path)
    assert (record.les_model, record.cfl, record.iterations_requested) == ("wale", 0.8, None)


def test_a_dictionary_with_unbalanced_braces_gives_warnings(tmp_path: Path) -> None:
    entries, warnings = parse_dictionary("a 1;\nb { c 2;\n} }\nd { e 3;\n")
    assert flatten(entries, "x") == {"x.a": "1", "x.b.c": "2", "x.d.e": "3"}
    assert len(warnings) == 2


@pytest.mark.parametrize(
    ("message", "category"),
    [
        ("Maximum number of iterations exceeded: 100", "numerical_instability"),
        ("Entry 'deltaT' not found in dictionary \"system/controlDict\"", "input_file"),
        ("Unknown discretisation scheme Gausss", "input_file"),
        ("Something else entirely", None),
    ],
)
def test_foam_messages_map_onto_the_schema_categories(message: str, category: str) -> None:
    assert categorize(message) == category


# ---------------------------------------------------------------- generated cases and truth

TIMESTAMP_FIELDS = {"created_at", "started_at", "ended_at"}


def agrees(field: str, expected: object, actual: object) -> bool:
    """Equal, with floats to a relative 1e-3 and timestamps read from ISO 8601."""
    if expected is None or actual is None:
        return expected is None and actual is None
    if field in TIMESTAMP_FIELDS:
        return datetime.fromisoformat(str(expected)) == actual
    if isinstance(expected, float):
        return actual == pytest.approx(expected, rel=1e-3)
    return expected == actual


def test_generated_cases_agree_with_their_truth(tmp_path: Path) -> None:
    truths = write_openfoam_cases(tmp_path, len(OUTCOMES) * 4, seed=5)
    assert {t["status"] for t in truths} == {s.value for s in Status}
    assert {t["solver_version"] for t in truths} >= {"v2312", "11"}
    assert {t["n_procs"] == 1 for t in truths if t["n_procs"]} == {True, False}
    problems = []
    for expected in truths:
        record = parse_run(tmp_path / expected["run_path"], tmp_path)
        assert record is not None
        problems += [
            f"{expected['run_path']}: {name} truth={value!r} parsed={getattr(record, name)!r}"
            for name, value in expected.items()
            if name not in ("error_template", "remedy")
            and not agrees(name, value, getattr(record, name))
        ]
    assert not problems, "\n".join(problems[:20])


def test_generated_cases_of_one_error_template_share_one_signature(tmp_path: Path) -> None:
    truths = write_openfoam_cases(tmp_path, len(OUTCOMES) * 4, seed=6)
    signatures: dict[str, set[str | None]] = {}
    for expected in truths:
        if expected["error_template"]:
            record = OpenFoamParser().parse(tmp_path / expected["run_path"], tmp_path)
            signatures.setdefault(expected["error_template"], set()).add(record.error_signature)
    assert len(signatures) >= 5
    assert all(len(found) == 1 for found in signatures.values()), signatures


@pytest.mark.slow
def test_a_mixed_archive_fills_one_runs_table_with_both_solvers(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    generate_archive(root, runs=40, seed=2)
    truths = write_openfoam_cases(root, len(OUTCOMES) * 2, seed=2)
    settings = Config(archive_root=root, data_dir=tmp_path / "data")
    crawl_into_warehouse(settings, list_partitions(settings))
    with connect(settings.duckdb_path, read_only=True) as con:
        counts = dict(con.execute("SELECT solver, count(*) FROM runs GROUP BY solver").fetchall())
        statuses = con.execute(
            "SELECT run_path, status FROM runs WHERE solver = 'openfoam'"
        ).fetchall()
    assert counts == {"avbp": 40, "openfoam": len(truths)}
    assert dict(statuses) == {t["run_path"]: t["status"] for t in truths}
