"""Persistence: the engine and sessions, the ORM models, SQL functions, Alembic migrations."""
