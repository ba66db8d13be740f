"""Checks on harmonised data: pandera validation and conservation."""
