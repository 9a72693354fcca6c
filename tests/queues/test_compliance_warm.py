"""A Claimer loads the calling rules' tables in the background when it is made, so the first full
claim of a console (or the first claim during a build) does not pay for them."""

from __future__ import annotations

import subprocess
import sys
import textwrap

# A fresh interpreter: in the test process another test has loaded the tables already.
_CHILD = textwrap.dedent(
    """
    import sys
    from queues.compliance import zones
    from queues.claims import admission
    from queues.claims.fast_claimer import Claimer
    from queues.store.db import make_engine, session_factory

    assert zones._zips.cache_info().currsize == 0, "loaded at import"
    assert admission._warmed is None, "started at import"
    engine = make_engine(sys.argv[1])
    Claimer(engine, session_factory(engine))  # no claim, not even a connection
    done = admission._warmed  # the Claimer started it
    assert done is not None, "not started by the Claimer"
    assert done.wait(120), "the tables were not loaded"  # a failure detector, not a pause
    print(zones._zips.cache_info().currsize, zones._phone_states.cache_info().currsize)
    """
)


def test_making_a_claimer_loads_the_zip_and_phone_tables_in_the_background(
    sqlite_url: str,
) -> None:
    run = subprocess.run(
        [sys.executable, "-c", _CHILD, sqlite_url],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["1", "1"]
