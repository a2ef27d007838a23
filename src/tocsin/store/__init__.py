"""The store: check results and alerting state, in SQLite (PostgreSQL later), behind one interface.

``open_store(url)`` picks the backend; ``Store`` is what every caller uses;
``ResultWriter`` batches results from the event loop into it.
"""

from tocsin.store.base import SchemaError, Store, StoreError, StoreUnavailable
from tocsin.store.engines import open_store
from tocsin.store.writer import ResultWriter

__all__ = ["ResultWriter", "SchemaError", "Store", "StoreError", "StoreUnavailable", "open_store"]
