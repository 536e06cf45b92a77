"""The stages of an OpenFOAM case: the one table the parser and the demo generator share.

An OpenFOAM case is a pipeline of applications, each with its own `log.<app>`:
meshing, pre-processing, decomposition, then the solver, whose log ends with
`End`. How far a case got is the stage of the last application it reached
(and, inside the solver, whether its time loop started), so a stage here is a
code, a label and the applications that belong to it. Post-processing
applications (reconstructPar, foamToVTK, ...) come after the run and never
decide how it ended.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Stage:
    """One step of a case: its stage code, its label and the applications that run it."""

    code: int
    label: str
    applications: frozenset[str] = frozenset()


MESHING = Stage(
    110,
    "meshing",
    frozenset(
        {
            "blockMesh",
            "snappyHexMesh",
            "checkMesh",
            "extrudeMesh",
            "extrude2DMesh",
            "refineMesh",
            "surfaceFeatureExtract",
            "surfaceFeatures",
            "cartesianMesh",
            "foamyHexMesh",
            "mirrorMesh",
            "transformPoints",
            "createBaffles",
            "splitMeshRegions",
            "fluentMeshToFoam",
            "gmshToFoam",
            "ideasUnvToFoam",
            "star4ToFoam",
        }
    ),
)
PRE_PROCESSING = Stage(
    150,
    "pre-processing",
    frozenset(
        {
            "setFields",
            "topoSet",
            "createPatch",
            "changeDictionary",
            "mapFields",
            "renumberMesh",
            "setExprFields",
            "potentialFoam",
            "applyBoundaryLayer",
            "foamDictionary",
        }
    ),
)
DECOMPOSITION = Stage(200, "decomposition", frozenset({"decomposePar"}))
SOLVER_START = Stage(250, "solver start-up")
SOLVER_LOOP = Stage(300, "solver time loop")
SUCCESS = Stage(0, "success")

# In the order a case goes through them; SUCCESS is the solver's `End`.
STAGES: tuple[Stage, ...] = (
    MESHING,
    PRE_PROCESSING,
    DECOMPOSITION,
    SOLVER_START,
    SOLVER_LOOP,
    SUCCESS,
)

POST_PROCESSING_APPLICATIONS = frozenset(
    {
        "reconstructPar",
        "reconstructParMesh",
        "redistributePar",
        "foamToVTK",
        "foamToEnsight",
        "postProcess",
        "foamPostProcess",
        "sample",
        "foamLog",
        "paraFoam",
    }
)


# Utilities no list can hold (each site writes its own), told by the shape of their names:
# converters into OpenFOAM's format (`canteraToFoam`, `fluent3DMeshToFoam`) prepare a case,
# converters out of it and `...Post` tools (`flameletFoamPost`) read its results.
_PRE_PROCESSING_NAME = re.compile(r"\w+ToFoam")
_POST_PROCESSING_NAME = re.compile(r"foamTo\w+|\w*[pP]ost(?:[A-Z]\w*)?|\w*[Pp]rocess\w*|sample\w*")


def stage_of_application(application: str) -> Stage | None:
    """The stage a utility belongs to; None for a solver (and for post-processing)."""
    stage = next((s for s in STAGES if application in s.applications), None)
    if stage is None and _PRE_PROCESSING_NAME.fullmatch(application):
        return PRE_PROCESSING
    return stage


def is_post_processing(application: str) -> bool:
    """Whether `application` reads a finished run's results (it never decides how it ended)."""
    return application in POST_PROCESSING_APPLICATIONS or bool(
        _POST_PROCESSING_NAME.fullmatch(application)
    )


def is_solver_application(application: str) -> bool:
    """Whether `application` is neither a pipeline utility nor post-processing."""
    return stage_of_application(application) is None and not is_post_processing(application)
