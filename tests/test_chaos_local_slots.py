"""`gettok run` without a Prefect server, after a run was killed mid-transcription.

Found by killing `gettok run` (local mode) while Whisper ran: its slot of the transcription limit
stayed taken in the temporary server's database (the lease died with that server), and the next
`gettok run` waited at "videos to transcribe" forever. The next run now frees it; a real Prefect
server's slots are never touched (their leases expire there).
"""

from __future__ import annotations

import os
import subprocess
import sys

from tests.chaos_world import ROOT

# A killed run's leftover: the limit with a slot taken and nobody holding it.
SCRIPT = """
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate
from gettok.local_mode import free_stale_model_slots
from gettok.orchestration import ensure_prefect_objects
from gettok.settings import get_settings

settings = get_settings()
ensure_prefect_objects(settings)
with get_client(sync_client=True) as client:
    client.update_global_concurrency_limit("gpu", GlobalConcurrencyLimitUpdate(active_slots=1))
    print("notes:", free_stale_model_slots(settings))
    print("taken:", client.read_global_concurrency_limit_by_name("gpu").active_slots)
    print("again:", free_stale_model_slots(settings))
"""


def test_a_local_run_frees_the_slot_a_killed_run_left_taken(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "GETTOK_"))}
    env |= {
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert "notes: [\"freed 1 slot(s) of the 'gpu' limit left taken by a killed run\"]" in lines
    assert "taken: 0" in lines and "again: []" in lines


def test_slots_on_a_real_prefect_server_are_left_alone(prefect_harness, settings_env):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate

    from gettok.local_mode import free_stale_model_slots
    from gettok.settings import get_settings

    settings = get_settings(transcription_limit="chaos-held-elsewhere")
    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name("chaos-held-elsewhere", 1)
        update = GlobalConcurrencyLimitUpdate(active_slots=1)
        client.update_global_concurrency_limit("chaos-held-elsewhere", update)
        assert free_stale_model_slots(settings) == []
        limit = client.read_global_concurrency_limit_by_name("chaos-held-elsewhere")
    assert limit.active_slots == 1  # another worker may hold it: its lease decides
