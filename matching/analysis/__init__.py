"""One analysis pipeline for the LIMS's match requests and ``dnatrack analyze``.

- :func:`analyse` (:mod:`.pipeline`): subject and background profiles and any number of
  reference sets in, an :class:`AnalysisResult` out;
- :class:`AnalysisResult` (:mod:`.result`): typed, versioned, with ``to_json`` and a
  ``from_json`` that reads every stored layout;
- :class:`AnalysisSettings` (:mod:`.settings`): the statistical settings, checked;
- :mod:`.references`: reference sets combined, and the set whose frequencies weigh each
  profile.

The names below load their module when first used, so that a command needing one stage (the
assignment model of ``dnatrack self-assign``) does not import the whole engine.
"""

from __future__ import annotations

import importlib

_MODULE_OF = {
    **dict.fromkeys(
        (
            "STAGE_WEIGHTS",
            "Describe",
            "Progress",
            "analyse",
            "fixed_scale_calibration",
            "groups_describer",
            "stages_of",
        ),
        "pipeline",
    ),
    **dict.fromkeys(
        (
            "READABLE_FORMATS",
            "RESULT_FORMAT",
            "AnalysisResult",
            "Node",
            "ProfileOrigin",
            "ResultLayoutError",
            "Subject",
            "upgrade",
        ),
        "result",
    ),
    **dict.fromkeys(("ANALYSES", "AnalysisError", "AnalysisSettings"), "settings"),
}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str):
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
