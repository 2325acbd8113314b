"""Readings and review: every reading of a zone (the AI's, clinicians', adjudications, imported
labels), the score of record, exam sign-off, blind reads and the review worklist."""
