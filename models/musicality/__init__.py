"""Musical analysis of a track, measured from its audio alone: tempo, key,
structure, drum pattern and the mix measures a genre is judged by.

``analyse`` runs everything once per track; ``models.scoring`` turns the
result into sub-scores and reasons, and ``cli/inspect.py`` draws it.
"""

from __future__ import annotations

from models.musicality.analysis import MusicalAnalysis, analyse

__all__ = ["MusicalAnalysis", "analyse"]
