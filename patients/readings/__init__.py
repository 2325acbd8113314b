"""Readings and review: raters' annotations of clips and clinicians' score overrides."""
