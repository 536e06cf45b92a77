"""Scheduler accounting copied beside the archive: what Slurm saw of each job, read from dumps."""
