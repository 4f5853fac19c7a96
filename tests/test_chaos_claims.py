"""Work claims after kill -9: a dead process's leases must not hold its videos for an hour.

Found by the crash trials: a run killed while transcribing left its `transcribe` claims, and the
rerun skipped those videos (reported as taken by another worker) and ended "completed" with no
Whisper transcripts at all.
"""

from __future__ import annotations

import socket
import subprocess
import sys

from gettok.claims import claim, worker_name


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_claims_of_a_dead_local_process_are_taken_over_at_once(db_url):
    host, gone = socket.gethostname(), dead_pid()
    # Both shapes of worker names in use: `host:pid` and `host:pid:suffix` (one per call).
    assert claim(db_url, "transcribe", [1, 2], worker=f"{host}:{gone}") == [1, 2]
    assert claim(db_url, "frames", [3], worker=f"{host}:{gone}:0a1b2c3d") == [3]
    assert claim(db_url, "transcribe", [1, 2, 5]) == [1, 2, 5]
    assert claim(db_url, "frames", [3]) == [3]


def test_claims_of_live_or_remote_workers_are_kept(db_url):
    alive = worker_name()  # this process
    assert claim(db_url, "transcribe", [1], worker=f"{alive}:other-call") == [1]
    assert claim(db_url, "transcribe", [2], worker=f"elsewhere-{socket.gethostname()}:1") == [2]
    assert claim(db_url, "transcribe", [3], worker="w1") == [3]
    assert claim(db_url, "transcribe", [1, 2, 3], worker="newcomer") == []
