"""Application services: the use cases screens call, built once by the CLI (or a test) from the
settings and handed to `OutreachApp` — as Harlequin's app takes an adapter. Their methods block
(screens call them from thread workers) and return frozen data from `queues.views`, never a
session or an ORM row; screens and widgets import nothing of SQLAlchemy (import-linter)."""
