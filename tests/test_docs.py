"""The README's screenshots (docs/img/): every picture it shows exists, every picture there is
shown, and each is a real, reasonably small PNG. The browser tests take them again on every run
(``$LUSWEB_TEST_OUTPUT/screenshots/readme-*.png``, from synthetic phantom clips only)."""
from __future__ import annotations

import re
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "docs" / "img"


def _shown() -> set[str]:
    text = (ROOT / "README.md").read_text()
    return set(re.findall(r"!\[[^\]]+\]\((docs/img/[^)\s]+)\)", text))


def test_readme_pictures_exist_and_are_all_shown() -> None:
    shown = _shown()
    assert {"docs/img/review-mode.png", "docs/img/worklist.png", "docs/img/exam-signed.png",
            "docs/img/timeline-reviewed.png"} <= shown
    present = {f"docs/img/{p.name}" for p in IMAGES.iterdir()}
    assert shown == present, (shown ^ present)


def test_readme_pictures_are_small_pngs() -> None:
    for path in sorted(IMAGES.iterdir()):
        assert path.suffix == ".png" and path.stat().st_size < 400_000, path
        with Image.open(path) as image:
            assert image.format == "PNG" and image.width >= 800, path
