"""Issue 20 #14, the runtime's small leaks: the database password in `redact`, two exports at
once, and report figures replaced whole."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import polars as pl

from gettok.settings import get_settings, redact
from gettok.tasks.export.dataset import _atomic_write
from gettok.tasks.report.figures import daily_volume_figure


def test_redact_hides_the_database_password_decoded_and_as_written():
    settings = get_settings(database_url="postgresql+psycopg://gettok:s3cr%40t-pw@db:5432/gettok")
    message = 'connection to "db" failed for gettok:s3cr%40t-pw@db (password "s3cr@t-pw" rejected)'
    shown = redact(message, settings)
    assert "s3cr" not in shown
    assert "gettok" in shown and "db" in shown  # only the password goes


def test_redact_leaves_text_alone_without_a_database_password():
    settings = get_settings(database_url="sqlite:///data/gettok.db")
    assert redact("sqlite:///data/gettok.db is locked", settings) == (
        "sqlite:///data/gettok.db is locked"
    )


def test_two_exports_writing_one_file_at_once_each_replace_it_whole(tmp_path):
    """Export A is half-way through writing when export B writes the same file."""
    target = tmp_path / "peru.csv"
    a_half_written, b_done = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def export_a(tmp: Path) -> None:
        with open(tmp, "w") as out:
            out.write("A" * 500)
            out.flush()
            a_half_written.set()
            b_done.wait(10)
            out.write("A" * 500)

    def export_b(tmp: Path) -> None:
        a_half_written.wait(10)
        tmp.write_text("B" * 1000)

    def run(write, after=None) -> None:
        try:
            _atomic_write(target, write)
        except BaseException as exc:  # noqa: BLE001  (the test reports it)
            errors.append(exc)
        finally:
            if after is not None:
                after.set()

    threads = [
        threading.Thread(target=run, args=(export_a,)),
        threading.Thread(target=run, args=(export_b, b_done)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert errors == []
    assert target.read_text() in ("A" * 1000, "B" * 1000)  # one export, never a mix
    assert sorted(p.name for p in tmp_path.iterdir()) == ["peru.csv"]  # no temp file left


def test_a_failed_export_leaves_the_earlier_file_and_no_temp(tmp_path):
    target = tmp_path / "peru.csv"
    target.write_text("earlier export")

    def broken(tmp: Path) -> None:
        tmp.write_text("half")
        raise OSError("disk full")

    try:
        _atomic_write(target, broken)
    except OSError:
        pass
    assert target.read_text() == "earlier export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["peru.csv"]


def test_a_figure_is_replaced_whole_never_written_in_place(tmp_path):
    """A reader holding the earlier figure (a hard link stands for its open file) keeps it
    intact: the new figure arrives by rename, so no one ever sees half a PNG."""
    path = tmp_path / "daily.png"
    path.write_bytes(b"earlier figure")
    held = tmp_path / "held-by-a-reader.png"
    os.link(path, held)
    daily_volume_figure(pl.DataFrame(), path)  # "no data yet": drawn all the same
    assert held.read_bytes() == b"earlier figure"
    assert path.read_bytes().startswith(b"\x89PNG")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["daily.png", "held-by-a-reader.png"]


def test_settings_handed_to_a_prefect_task_serialise_without_any_secret():
    """Tasks take `Settings`; what Prefect records of a parameter is its serialised form."""
    from prefect.serializers import JSONSerializer

    secrets = {
        "database_url": "postgresql+psycopg://gettok:pg-s3cret@db:5432/gettok",
        "tiktok_client_key": "key-s3cret",
        "tiktok_client_secret": "client-s3cret",
        "openai_api_key": "sk-s3cret",
        "export_salt": "salt-s3cret",
        "smtp_password": "smtp-s3cret",
    }
    settings = get_settings(**secrets)
    for written in (
        settings.model_dump_json(),
        str(settings.model_dump(mode="json")),
        JSONSerializer().dumps(settings).decode(),
    ):
        assert "s3cret" not in written
        assert "gettok:***@db:5432" in written  # the rest of the URL stays, for the record
    assert settings.resolved_database_url == secrets["database_url"]  # usable all the same
