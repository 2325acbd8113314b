"""Imaging and ingest: the clips of an exam, how they are read, de-identified and stored."""
