"""dnatrack: forensic DNA sample tracking and genotype matching for wildlife crime.

The core package holds the genotype data model (:class:`GenotypeTable`), marker panels
(:class:`Panel`), reference sets (:class:`ReferenceSet`), file formats and the ``dnatrack``
command line.
"""

__version__ = "0.1.0"

from dnatrack.errors import GenotypeFormatError
from dnatrack.genotypes import MISSING, AlleleCoding, GenotypeTable
from dnatrack.panels import Locus, Panel, load_panel
from dnatrack.reference import PopulationInfo, ReferenceSet, load_reference_set

__all__ = [
    "MISSING",
    "AlleleCoding",
    "GenotypeFormatError",
    "GenotypeTable",
    "Locus",
    "Panel",
    "PopulationInfo",
    "ReferenceSet",
    "__version__",
    "load_panel",
    "load_reference_set",
]
