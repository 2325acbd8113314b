"""The decoding budget of an uploaded clip, from the settings (``LUSWEB_MAX_FRAMES``,
``LUSWEB_MAX_PIXELS_PER_FRAME``, ``LUSWEB_MAX_DECODED_MB``; see ``lusweb/settings/base.py``)."""
from __future__ import annotations

from django.conf import settings

from patients.imaging.core.reader import Budget


def clip_budget() -> Budget:
    """The :class:`~patients.imaging.core.reader.Budget` every clip that enters the platform is read under."""
    return Budget(
        max_frames=int(settings.MAX_FRAMES),
        max_pixels_per_frame=int(settings.MAX_PIXELS_PER_FRAME),
        max_decoded_bytes=int(settings.MAX_DECODED_MB) * 1024 * 1024,
    )
