"""Dagster definitions: resources, partitions, checks, jobs, sensors."""
