"""Tools for crosswalk authors and CI: inspect, scaffold, JSON Schema, diff, coverage."""
