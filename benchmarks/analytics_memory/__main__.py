"""`python -m benchmarks.analytics_memory`: a package's `__main__`, never imported again by
the chart worker it spawns (see the package's docstring)."""

from benchmarks.analytics_memory import main

main()
