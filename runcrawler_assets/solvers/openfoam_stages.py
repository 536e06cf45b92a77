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


def stage_of_application(application: str) -> Stage | None:
    """The stage a utility belongs to; None for a solver (and for post-processing)."""
    return next((s for s in STAGES if application in s.applications), None)


def is_solver_application(application: str) -> bool:
    """Whether `application` is neither a pipeline utility nor post-processing."""
    return (
        stage_of_application(application) is None
        and application not in POST_PROCESSING_APPLICATIONS
    )
