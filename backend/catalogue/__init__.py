"""The shipped service catalogue (事项清单) and its start-up loader."""

from backend.catalogue.loader import LoadReport, load_catalogue
from backend.catalogue.source import DEFAULT_CATALOGUE, CatalogueSource, CatalogueSourceError, read_catalogue

__all__ = [
    "DEFAULT_CATALOGUE",
    "CatalogueSource",
    "CatalogueSourceError",
    "LoadReport",
    "load_catalogue",
    "read_catalogue",
]
