"""Tools for crosswalk authors and CI: inspect, scaffold, adapt, declare, JSON Schema, diff, coverage."""
