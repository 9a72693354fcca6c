"""What crosses the seam to the screens: frozen data with no SQLAlchemy behind it (an import-linter
contract keeps this room free of `sqlalchemy`, `queues.store` and the rest of the domain)."""
