"""runcrawler: how a team's parallel solver is really used, from its run archive.

The core (records, solvers, discovery, warehouse, analytics, charts, report)
is plain Python; `runcrawler_assets.definitions` wires it into Dagster.
"""
