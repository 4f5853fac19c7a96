"""Ctrl-C and SIGTERM stop a gettok command within seconds, leaving nothing held.

Python's own handling failed twice: Ctrl-C reaches the whole process group, so the temporary
Prefect server died first and the run went on for minutes against it (every task recording
"ConcurrencySlotAcquisitionError" as transient); and at exit Python waits for Prefect's task
threads to finish their queue, so `gettok download` seemed to ignore Ctrl-C. Here a watcher
thread sees either signal, releases this process's work claims, stops the child processes (the
Prefect server among them) and exits at once. A local run's gpu slot is a lock the kernel drops
at exit. What was stored is kept and every stage resumes, so a rerun finishes the work.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

CLAIMS_WAIT_S = 5.0  # a database that does not answer does not hold the exit (leases expire)
CHILDREN_WAIT_S = 1.0
_stopping = threading.Lock()


def stop_on_signals() -> bool:
    """Stop on the first SIGINT or SIGTERM. Call first thing in the main thread.

    SIGINT is blocked in every thread started after, and in child processes (they inherit the
    mask): a Ctrl-C, sent by the terminal to the whole process group, no longer kills the
    Prefect server under the run. SIGTERM is left to Python handlers (Prefect swaps in its own
    during a flow run, which would wait for running tasks), and seen through the wakeup fd,
    which the interpreter writes to whichever Python handler is installed."""
    if not hasattr(signal, "pthread_sigmask"):  # Windows: Python's default handling
        return False
    if threading.current_thread() is not threading.main_thread():
        return False
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    signal.signal(signal.SIGTERM, _leave_to_watcher)
    signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    threading.Thread(target=_wait_for_sigint, name="gettok-stop-int", daemon=True).start()
    threading.Thread(
        target=_watch_wakeups, args=(read_end,), name="gettok-stop-term", daemon=True
    ).start()
    return True


def _leave_to_watcher(signum, frame) -> None:
    """A Python handler, so that the interpreter writes SIGTERM to the wakeup fd."""


def _wait_for_sigint() -> None:
    stop(signal.sigwait({signal.SIGINT}))


def _watch_wakeups(read_end: int) -> None:
    while True:
        for signum in os.read(read_end, 64):
            if signum in (signal.SIGTERM, signal.SIGINT):
                stop(signum)


def stop(signum: int) -> None:
    """Release what this process holds, stop its children, exit 128 + signal number."""
    if not _stopping.acquire(blocking=False):
        return  # already stopping
    name = signal.Signals(signum).name
    _say(f"gettok: {name} received: stopping (releasing work in flight)")
    released = _release_claims_within(CLAIMS_WAIT_S)
    stopped = stop_children(CHILDREN_WAIT_S)
    claims_said = "no" if released is None else str(released)
    _say(
        f"gettok: stopped by {name}: released {claims_said} work claim(s), stopped "
        f"{stopped} child process(es); what was stored is kept, rerun to finish"
    )
    os._exit(128 + signum)


def _say(line: str) -> None:
    try:
        sys.stdout.flush()
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _release_claims_within(timeout_s: float) -> int | None:
    """This process's claims, released in a thread that may not finish (a database lock held
    by a task in flight): then None, and the claims wait for their lease or the next claimer,
    which drops claims of dead processes on this host."""
    outcome: list[int] = []

    def release() -> None:
        try:
            from gettok import claims
            from gettok.settings import get_settings

            outcome.append(claims.release_worker(get_settings().resolved_database_url))
        except Exception as exc:  # noqa: BLE001  (stopping must not fail on it)
            _say(f"gettok: could not release work claims: {type(exc).__name__}: {exc}")

    thread = threading.Thread(target=release, name="gettok-stop-claims", daemon=True)
    thread.start()
    thread.join(timeout_s)
    return outcome[0] if outcome else None


def stop_children(wait_s: float) -> int:
    """SIGTERM every descendant, then SIGKILL those still there after `wait_s` (children inherit
    the blocked signals, so most need the SIGKILL). Returns how many there were."""
    children = descendants(os.getpid())
    for pid in children:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and any(_exists(p) for p in children):
        time.sleep(0.05)
    for pid in children:
        _signal(pid, signal.SIGKILL)
    return len(children)


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (Linux /proc; elsewhere `ps`)."""
    parents = _parent_map()
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        kids = [child for child, ppid in parents.items() if ppid == parent]
        found += kids
        frontier += kids
    return found


def _parent_map() -> dict[int, int]:
    proc = Path("/proc")
    if proc.is_dir():
        parents = {}
        for entry in proc.iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                # "pid (comm) state ppid ...": comm may hold spaces and parentheses
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
        return parents
    import subprocess

    out = subprocess.run(["ps", "-A", "-o", "pid=", "-o", "ppid="], capture_output=True, text=True)
    return {int(a): int(b) for a, b in (line.split() for line in out.stdout.splitlines())}


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child (not yet reaped) counts as gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass
