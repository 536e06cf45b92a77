"""`python -m benchmarks`: every benchmark at full size, figures into BENCHMARKS.md."""

from benchmarks.run_all import main

main()
