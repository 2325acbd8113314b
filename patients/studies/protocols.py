"""Lung-zone protocols: named zones in anatomical order.

Pure data (no Django import): studies, exams, scoring, the dashboards and the export share it. Zone codes are
short and stable (``R1``...); labels say where the probe goes. Order is anatomical: right side
first, then left; anterior -> lateral -> posterior; upper before lower.
"""
from __future__ import annotations

from dataclasses import dataclass

from lusweb.errors import ServiceError


@dataclass(frozen=True)
class Zone:
    code: str
    side: str  # "right" | "left"
    region: str  # "anterior" | "lateral" | "posterior"
    level: str  # "upper" | "middle" | "lower"
    label: str

    @property
    def site(self) -> str:
        """Where the probe goes, the same string in every protocol (``right-lateral-lower``): the
        12-zone R4 and the BLUE-6 R3 (PLAPS point) are one site, so exams of both compare there."""
        return f"{self.side}-{self.region}-{self.level}"


@dataclass(frozen=True)
class Protocol:
    key: str
    name: str
    zones: tuple[Zone, ...]

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(z.code for z in self.zones)

    @property
    def max_score(self) -> int:
        """The highest global score: 3 per zone."""
        return 3 * len(self.zones)

    def column(self, code: str) -> str:
        """A zone named with its protocol (``blue-6:R3``): codes repeat across protocols."""
        return f"{self.key}:{code}"

    def zone(self, code: str) -> Zone:
        for z in self.zones:
            if z.code == code:
                return z
        raise KeyError(code)


def _side(prefix: str, side: str, layout: list[tuple[str, str, str]]) -> list[Zone]:
    return [
        Zone(f"{prefix}{i}", side, region, level, f"{side.title()} {label}")
        for i, (region, level, label) in enumerate(layout, start=1)
    ]


def _both(layout: list[tuple[str, str, str]]) -> tuple[Zone, ...]:
    return tuple(_side("R", "right", layout) + _side("L", "left", layout))


TWELVE = [
    ("anterior", "upper", "anterior upper"),
    ("anterior", "lower", "anterior lower"),
    ("lateral", "upper", "lateral upper"),
    ("lateral", "lower", "lateral lower"),
    ("posterior", "upper", "posterior upper"),
    ("posterior", "lower", "posterior lower"),
]
EIGHT = TWELVE[:4]
BLUE = [
    ("anterior", "upper", "upper BLUE point"),
    ("anterior", "lower", "lower BLUE point"),
    ("lateral", "lower", "PLAPS point"),
]
# Soldati et al. 2020: 14 areas, 7 per side (3 posterior, 2 lateral, 2 anterior).
SOLDATI = [
    ("anterior", "upper", "anterior upper"),
    ("anterior", "lower", "anterior lower"),
    ("lateral", "middle", "lateral middle"),
    ("lateral", "lower", "lateral basal"),
    ("posterior", "upper", "posterior upper"),
    ("posterior", "middle", "posterior middle"),
    ("posterior", "lower", "posterior basal"),
]

PROTOCOLS: dict[str, Protocol] = {
    p.key: p
    for p in (
        Protocol("12-zone", "12 zones (anterior, lateral, posterior x upper, lower)", _both(TWELVE)),
        Protocol("8-zone", "8 zones (anterior, lateral x upper, lower)", _both(EIGHT)),
        Protocol("blue-6", "BLUE protocol, 6 points", _both(BLUE)),
        Protocol("14-zone", "14 zones (Soldati)", _both(SOLDATI)),
    )
}
PROTOCOL_CHOICES: list[tuple[str, str]] = [(p.key, p.name) for p in PROTOCOLS.values()]


def get_protocol(key: str) -> Protocol:
    """The protocol named ``key``; ``KeyError`` names the valid keys."""
    try:
        return PROTOCOLS[key]
    except KeyError:
        raise KeyError(f"unknown protocol {key!r}; expected one of {', '.join(PROTOCOLS)}") from None


def validate_protocol(key: str) -> None:
    """Refuse (``ServiceError`` code ``bad_protocol``) a key that names no protocol."""
    if key not in PROTOCOLS:
        raise ServiceError(f"unknown protocol {key!r}; expected one of {', '.join(PROTOCOLS)}", code="bad_protocol")
