"""Building the queues: the build and its scope, the clinical rules, and task priority."""
