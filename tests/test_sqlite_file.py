"""After any process that wrote to the embedded SQLite database exits, the `.db` file alone holds
the data: a researcher who copies data/gettok.db (and not gettok.db-wal) copies everything."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]

# Writes a dataset, then exits while a daemon thread still holds a pooled connection (as the
# Prefect engine's worker threads do): without a checkpoint the data would stay in the WAL.
WRITE = """
import sys, threading, time
from gettok import db
from tests.dataset_for_outputs import build_dataset

url = sys.argv[1]
db.upgrade(url)
data = build_dataset(url, days=2, per_day=9)
held = threading.Event()

def reader():
    with db.get_engine(url).connect() as connection:
        connection.exec_driver_sql("SELECT 1")
        held.set()
        time.sleep(3600)

threading.Thread(target=reader, daemon=True).start()
held.wait()
print(len(data.videos))
"""


def test_a_copied_db_file_holds_the_data(tmp_path):
    original = tmp_path / "data" / "gettok.db"
    done = subprocess.run(
        [sys.executable, "-c", WRITE, f"sqlite:///{original}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    videos = int(done.stdout.split()[-1])
    wal = original.with_name("gettok.db-wal")
    assert not wal.exists() or wal.stat().st_size == 0  # folded into the .db file

    copy = tmp_path / "elsewhere" / "gettok.db"
    copy.parent.mkdir()
    shutil.copy(original, copy)  # the .db file only
    with sqlite3.connect(copy) as connection:
        stored = connection.execute("SELECT count(*) FROM videos").fetchone()[0]
        members = connection.execute("SELECT count(*) FROM campaign_videos").fetchone()[0]
    assert videos > 0 and members > videos and stored > videos  # (+ one of another campaign)
