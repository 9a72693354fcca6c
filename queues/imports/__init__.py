"""Pharmacy data in: FHIR R4 (bundles, bulk NDJSON, a server) and CSV exports, upserted by the
source's identifiers, then the changed patients' queues rebuilt (queues.imports.run)."""
