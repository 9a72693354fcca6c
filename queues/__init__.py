"""Outreach domain: models, queues, claiming, outcomes, compliance and reports (no UI here)."""
