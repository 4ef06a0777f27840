"""The laboratory's quality system (models in :mod:`lims.models.quality`).

- :mod:`lims.quality.runs`: genotyping runs imported with their plate map, the controls
  checked, a run put on hold and its disposition; extraction batches.
- :mod:`lims.quality.checks`: the contamination and duplicate screen of every new profile,
  what keeps a profile from review, hit confirmations, proficiency and validation records.
- :mod:`lims.quality.species_tests`: species tests of samples with :mod:`matching.species`.

The comparisons themselves are :mod:`matching.contamination`'s; this package loads, calls,
stores and refuses.
"""

from __future__ import annotations


class QualityError(ValueError):
    """A quality action that cannot be done; ``status`` is the HTTP status it maps to (403
    separation of duties, 409 state conflict, 422 bad input); ``problems`` lists
    ``{"field", "message"}`` entries (with ``line`` for file problems)."""

    def __init__(self, status: int, message: str, problems: list[dict] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.problems = problems or []
