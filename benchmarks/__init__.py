"""runcrawler benchmarks: each compares runcrawler with a baseline measured in the same run.

One module per benchmark, each a function taking the archive size and
returning its figures as a dict (so the smoke test can call it with tiny
sizes and assert on the results, never on times). `python -m benchmarks`
runs them all at full size and writes BENCHMARKS.md; see that file.
"""
