"""Bundled reference data: marker panels, simulated reference genotype sets, species barcodes.

Only data and small path helpers live here; the loaders that parse them are in ``dnatrack``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

_ROOT = Path(str(resources.files(__name__)))


def data_path(*parts: str) -> Path:
    """Path of a bundled file or folder."""
    return _ROOT.joinpath(*parts)


def list_panels() -> list[str]:
    """Names of the bundled marker panels."""
    return sorted(p.stem for p in data_path("panels").glob("*.json"))


def panel_path(name: str) -> Path:
    path = data_path("panels", f"{name}.json")
    if not path.is_file():
        raise ValueError(
            f"no bundled panel {name!r}; bundled panels: {', '.join(list_panels()) or 'none'}"
        )
    return path


def list_reference_sets() -> list[str]:
    """Names of the bundled reference sets."""
    root = data_path("reference_sets")
    return sorted(p.name for p in root.iterdir() if (p / "meta.json").is_file())


def reference_set_path(name: str) -> Path:
    path = data_path("reference_sets", name)
    if not (path / "meta.json").is_file():
        raise ValueError(
            f"no bundled reference set {name!r}; bundled sets: "
            f"{', '.join(list_reference_sets()) or 'none'}"
        )
    return path
