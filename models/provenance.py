"""Licenses of the weights behind each generation backend, and what they allow.

Every track row records the license of what made it, and a paid request
may only be served by a generator whose license allows commercial use. The
table is the one place that says so; a backend missing from it is refused
for paid work (unknown terms are not permission).
"""

from __future__ import annotations

from dataclasses import dataclass

from models.errors import ModelsError


@dataclass(frozen=True)
class License:
    """An SPDX license id and whether it allows commercial use."""

    spdx: str
    commercial_use: bool
    note: str = ""


APACHE_2 = License("apache-2.0", True, "SonicForge's own synthesizer; no weights")
CC_BY_NC_4 = License(
    "cc-by-nc-4.0", False, "Meta's released MusicGen weights: non-commercial use only"
)
UNKNOWN = License("unknown", False, "no license recorded for this backend")

#: Backend name -> the license of what it generates with.
BACKEND_LICENSES: dict[str, License] = {
    "procedural": APACHE_2,
    "musicgen": CC_BY_NC_4,
    "audiocraft": CC_BY_NC_4,
}

#: The backend a paid request falls back to when the chosen one is non-commercial.
COMMERCIAL_FALLBACK = "procedural"

#: MLflow tags a registered generator carries.
LICENSE_TAG = "license"
COMMERCIAL_TAG = "commercial_use"


class LicenseError(ModelsError):
    """A generator's license forbids what it was asked to do."""


def license_for(backend: str) -> License:
    """The license of ``backend``'s output (``UNKNOWN`` when not listed)."""
    return BACKEND_LICENSES.get(backend, UNKNOWN)


def commercial_backends() -> list[str]:
    return sorted(name for name, lic in BACKEND_LICENSES.items() if lic.commercial_use)


def license_tags(backend: str) -> dict[str, str]:
    """Tags for a registered generator version or an MLflow run."""
    lic = license_for(backend)
    return {LICENSE_TAG: lic.spdx, COMMERCIAL_TAG: str(lic.commercial_use).lower()}


def commercial_choice(backend: str, *, policy: str) -> str:
    """The backend a commercial (paid) generation uses when ``backend`` was
    chosen: ``backend`` itself when its license allows commercial use; the
    commercial fallback under ``policy="fallback"``; otherwise a
    ``LicenseError`` naming the license and what is allowed."""
    lic = license_for(backend)
    if lic.commercial_use:
        return backend
    if policy == "fallback":
        return COMMERCIAL_FALLBACK
    raise LicenseError(
        f"generator {backend!r} is licensed {lic.spdx} ({lic.note}), which forbids commercial "
        f"use; a paid request may use: {', '.join(commercial_backends())}"
    )
