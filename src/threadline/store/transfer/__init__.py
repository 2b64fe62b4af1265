"""Bringing history in and out: the threadline export format and the bulk loaders.

- `format`: the export format's records (generated from store/columns.py), results, errors.
- `export`: JSONL and JSON export.
- `reader`: reading and checking a threadline export, to the end, before anything is written.
- `importer`: loading a checked export in short transactions, resumable after a crash.
- `history`: the loader for other tools' history (`Store.load_history`, threadline.records),
  with `batches` (checking and converting a batch), `pipe` (from the reading thread to the
  writer) and `merge` (writing batches: sessions by source id, messages by key, file marks).
- `bulk`: what both loaders share: many rows per transaction, the per-row triggers' work done
  in bulk, the pace of transactions and pauses.

Imported when first used (pydantic models are built at import): `threadline.store` itself
does not import this package.
"""

from threadline.store.transfer.export import export_document, export_jsonl
from threadline.store.transfer.format import (
    FORMAT,
    VERSION,
    ExportStats,
    ImportFormatError,
    ImportResult,
    ImportTimings,
)
from threadline.store.transfer.history import LoadReport, imported_session_id

__all__ = [
    "FORMAT",
    "VERSION",
    "ExportStats",
    "ImportFormatError",
    "ImportResult",
    "ImportTimings",
    "LoadReport",
    "export_document",
    "export_jsonl",
    "imported_session_id",
]
