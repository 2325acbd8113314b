"""Pure imaging code (numpy, scipy, pydicom, PyAV, Pillow): no Django import, so the scoring core,
the training scripts and the web process share one reader, one sector finder and one
de-identifier. ``tests/scoring/test_pure_core.py`` proves it."""
