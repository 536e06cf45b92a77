"""The AVBP solver: run.params, the log, the milestones, the parser."""
