"""`python -m gettok.cli`, as the tests' subprocesses and `tests/no_waits.py` run it."""

from gettok.cli import main

if __name__ == "__main__":
    main()
