"""The OpenFOAM solver: dictionaries, logs, stages, the parser."""
