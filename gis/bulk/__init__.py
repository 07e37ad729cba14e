"""Bulk import of incidents, buildings, addresses and hazards (``gridmap import``).

readers (CSV/XLSX/GeoJSON/GeoPackage) → validate (per row and field) → derive (keys, parsed
addresses, deadlines) → store (binary COPY, in-process assignment, one transaction) → report.
"""

from gis.bulk.pipeline import ImportOptions, ImportRejected, ImportResult, import_file, import_frame
from gis.bulk.readers import ImportFileError
from gis.bulk.specs import SPECS

__all__ = ["SPECS", "ImportFileError", "ImportOptions", "ImportRejected", "ImportResult", "import_file", "import_frame"]
