"""Thin Dagster asset functions over ``models`` and ``analytics``."""
