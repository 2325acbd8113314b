"""Scoring with a weights file: the bundle, the scorer, Grad-CAM, aggregation, exam summary, six-class, domain check.

Never imports :mod:`scoring.core.training`.
"""
