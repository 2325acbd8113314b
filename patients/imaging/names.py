"""Uploaded file names, made safe to keep and show.

A name is the uploader's text: it is only ever shown (to those who may see identifying data) and
never decides how a file is stored or read (the format is sniffed from the bytes). Bidirectional
controls are removed so that ``"\\u202egnp.exe"`` is kept and shown as ``gnp.exe``, not as a
name that reads ``exe.png``; other control and format characters and path parts go too.
"""
from __future__ import annotations

import unicodedata

#: Bidirectional embedding, override and isolate controls, and the directional marks.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
MAX_LENGTH = 255


def safe_filename(name: str) -> str:
    """``name`` without folders, bidirectional controls, control or format characters (NFC,
    trimmed, at most 255 characters; '' when nothing is left)."""
    name = unicodedata.normalize("NFC", name or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    kept = "".join(ch for ch in name if ch not in BIDI_CONTROLS and unicodedata.category(ch) not in ("Cc", "Cf"))
    return kept.strip()[:MAX_LENGTH]
