"""One analysis pipeline for the LIMS's match requests and ``dnatrack analyze``.

- :func:`analyse` (:mod:`.pipeline`): subject and background profiles and any number of
  reference sets in, an :class:`AnalysisResult` out;
- :class:`AnalysisResult` (:mod:`.result`): typed, versioned, with ``to_json`` and a
  ``from_json`` that reads every stored layout;
- :class:`AnalysisSettings` (:mod:`.settings`): the statistical settings, checked;
- :mod:`.references`: reference sets combined, and the set whose frequencies weigh each
  profile.
"""

from matching.analysis.pipeline import (
    STAGE_WEIGHTS,
    Describe,
    Progress,
    analyse,
    fixed_scale_calibration,
    groups_describer,
    stages_of,
)
from matching.analysis.result import (
    READABLE_FORMATS,
    RESULT_FORMAT,
    AnalysisResult,
    Node,
    ProfileOrigin,
    ResultLayoutError,
    Subject,
    upgrade,
)
from matching.analysis.settings import ANALYSES, AnalysisError, AnalysisSettings

__all__ = [
    "ANALYSES", "READABLE_FORMATS", "RESULT_FORMAT", "STAGE_WEIGHTS", "AnalysisError",
    "AnalysisResult", "AnalysisSettings", "Describe", "Node", "ProfileOrigin", "Progress",
    "ResultLayoutError", "Subject", "analyse", "fixed_scale_calibration", "groups_describer",
    "stages_of", "upgrade",
]
