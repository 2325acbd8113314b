"""Dashboards: study overview, patient timeline, chest diagram, clip viewer and correlation pages.

``stats`` holds the pure computations (no Django), ``selectors`` the reads that feed both the
pages and the API, ``views``/``api`` are thin, ``urls`` routes pages and ``api/v1/...`` alike.
"""
