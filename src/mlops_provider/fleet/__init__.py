"""Many models from one catalogue: ``catalogue`` reads the YAML model catalogue, ``schema`` checks its entries and
``entries`` holds what they become (plain Python); ``dags`` turns the entries into DAGs with the reference DAGs' wiring.

``from mlops_provider.fleet import load_catalogue`` imports no Airflow; ``mlops_provider.fleet.dags`` does.
"""

from mlops_provider.fleet.catalogue import load_catalogue, parse_catalogue
from mlops_provider.fleet.entries import Catalogue, CatalogueEntryError, CatalogueError, ModelEntry

__all__ = ["Catalogue", "CatalogueEntryError", "CatalogueError", "ModelEntry", "load_catalogue", "parse_catalogue"]
