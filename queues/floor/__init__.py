"""The floor: the supervisor monitor, floor controls, statistics and agent states."""
