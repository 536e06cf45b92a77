"""THE DAGSTER LAYER: assets, checks, sensors, schedules, resources, partitions, runner."""
