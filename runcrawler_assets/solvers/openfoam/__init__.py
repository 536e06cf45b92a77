"""The OpenFOAM solver: dictionaries, case settings, logs, case runs, stages, the parser."""
