"""Run a module as `python -m` does, with every retry's waits switched off: for tests that start
gettok in a subprocess (kill tests, chaos trials), where the conftest's switch does not reach.

    python tests/no_waits.py gettok.cli collect --campaign ...

The tries stay what each policy says (stamina's testing mode, capped at the policy's own
`attempts`); only the waiting goes, as in the in-process tests. Production code has no knob for it.
"""

import runpy
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import stamina
from stamina.instrumentation import get_on_retry_hooks, set_on_retry_hooks

TEST_MAX_ATTEMPTS = 1000  # a ceiling only: each policy's own `attempts` applies below it


def no_waits() -> None:
    stamina.set_testing(True, attempts=TEST_MAX_ATTEMPTS, cap=True)


@contextmanager
def real_waits() -> Iterator[list[float]]:
    """For a test that measures waiting: retries wait for real inside the block, and each wait
    stamina schedules is recorded (seconds), in order."""
    waits: list[float] = []
    before = get_on_retry_hooks()
    set_on_retry_hooks([*before, lambda details: waits.append(details.wait_for)])
    try:
        with stamina.set_testing(False):
            yield waits
    finally:
        set_on_retry_hooks(before)


if __name__ == "__main__":
    no_waits()
    module = sys.argv[1]
    sys.argv = [module, *sys.argv[2:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
