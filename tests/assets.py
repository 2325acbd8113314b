"""Check that a page loads its scripts and styles from this server only (no CDN)."""
from __future__ import annotations

import re

# An absolute or protocol-relative URL in src/href/url(...), or a CDN host name. A bare "cdn"
# substring is not enough: random CSRF tokens contain it now and then.
_EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["'](?:https?:)?//|url\(\s*["']?(?:https?:)?//|\bcdn\.""", re.I)


def external_asset_refs(html: str) -> list[str]:
    """The references in ``html`` that would load something from another host."""
    return [m.group(0) for m in _EXTERNAL.finditer(html)]
