"""Alerts: per-study rules evaluated when an exam is scored or signed and when a gas is entered."""
