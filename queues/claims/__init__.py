"""Claiming: the full claim under a lease, the console's fast path, the claim-time check ahead."""
