"""Outreach Console: the Textual app, its screens and widgets, the softphone adapter and the CLI."""
