"""The demo archive generator (AVBP runs and OpenFOAM cases) and its truth."""
