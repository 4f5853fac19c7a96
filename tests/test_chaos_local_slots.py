"""The gpu slot of `gettok run` without a Prefect server (issue 20 #12).

Found twice. First a run killed mid-transcription kept its slot taken in the temporary server's
database forever; the fix freed every taken slot at the next run's start, and then a second run
started beside a live one freed the live run's slot: two Whisper models loaded at once. Now a
local slot is an OS lock held by the process: the kernel frees it when the holder dies, and only
then.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from gettok.tasks.transcribe.slot import holder_of, local_slot
from tests.chaos_world import ROOT

# What a local run does around the model: its start (before this fix, freeing "stale" slots),
# then the model work inside the slot. It says when it asks for, got and gave back the slot; the
# first run holds it until the second is asking, and a while longer.
RUN = """
import sys, time
from pathlib import Path
from gettok import local_mode
from gettok.orchestration import ensure_prefect_objects
from gettok.settings import get_settings
from gettok.tasks.transcribe.transcriber import model_slot

asking, hold_until = Path(sys.argv[1]), sys.argv[2]
settings = get_settings()
ensure_prefect_objects(settings)
for note in getattr(local_mode, "free_stale_model_slots", lambda s: [])(settings):
    print(note, flush=True)
asking.touch()
with model_slot(settings.transcription_limit):  # one slot, the default
    print("got", time.time(), flush=True)
    while hold_until and not Path(hold_until).exists():
        time.sleep(0.1)
    time.sleep(5 if hold_until else 0)
    print("released", time.time(), flush=True)
"""


def local_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "GETTOK_"))}
    return env | {
        "PREFECT_HOME": str(tmp_path / "prefect-home"),  # one machine: both runs share it
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",  # a loaded machine
        "GETTOK_DATA_DIR": str(tmp_path / "data"),
    }


def start_run(env: dict[str, str], asking: Path, hold_until: Path | str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", RUN, str(asking), str(hold_until)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def times(output: str, word: str) -> float:
    return next(float(line.split()[1]) for line in output.splitlines() if line.startswith(word))


def test_two_local_runs_at_once_never_both_hold_the_model(tmp_path):
    env = local_env(tmp_path)
    first = start_run(env, tmp_path / "first-asking", hold_until=tmp_path / "second-asking")
    try:
        got = first.stdout.readline()  # the first run holds the slot...
        assert got.startswith("got"), first.stderr.read()[-3000:]
        second = start_run(env, tmp_path / "second-asking", hold_until="")  # ...as the second asks
        out, err = second.communicate(timeout=300)
        first_out, _ = first.communicate(timeout=60)
    finally:
        for proc in (first, locals().get("second")):
            if proc is not None and proc.poll() is None:
                proc.kill()
    assert second.returncode == 0, err[-3000:]
    assert "left taken by a killed run" not in out
    assert times(out, "got") >= times(first_out, "released")  # never both at once


def hold_in_child(folder: Path) -> subprocess.Popen:
    code = (
        "import sys, time; from pathlib import Path\n"
        "from gettok.tasks.transcribe.slot import local_slot\n"
        "with local_slot('gpu', 1, Path(sys.argv[1])):\n"
        "    print('got', flush=True); time.sleep(600)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(folder)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout.readline().strip() == "got"
    return child


def test_a_live_holder_keeps_its_slot_and_a_killed_one_frees_it_at_once(tmp_path):
    folder = tmp_path / "slots"
    holder = hold_in_child(folder)
    try:
        assert f"pid {holder.pid}" in holder_of(folder / "gpu.0.lock")
        got = threading.Event()

        def wait_for_slot() -> None:
            with local_slot("gpu", 1, folder):
                got.set()

        waiter = threading.Thread(target=wait_for_slot, daemon=True)
        waiter.start()
        assert not got.wait(2), "a live run's slot was taken"
        os.kill(holder.pid, signal.SIGKILL)  # kill -9: nothing of its own code runs
        holder.wait(10)
        assert got.wait(5), "a dead run's slot was not freed"
        waiter.join(5)
    finally:
        if holder.poll() is None:
            holder.kill()
    assert holder_of(folder / "gpu.0.lock") == "released"


def test_two_slots_let_two_runs_in_and_hold_the_third(tmp_path):
    folder = tmp_path / "slots"
    third = threading.Event()

    def third_run() -> None:
        with local_slot("gpu", 2, folder):
            third.set()

    with local_slot("gpu", 2, folder) as one, local_slot("gpu", 2, folder) as two:
        assert {one, two} == {0, 1}
        waiter = threading.Thread(target=third_run, daemon=True)
        waiter.start()
        assert not third.wait(1.5)
    assert third.wait(5)
    waiter.join(5)
