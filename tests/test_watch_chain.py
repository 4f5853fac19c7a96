"""The whole chain over HTTP: the sandbox shows a person's photo in some of its videos; gettok
collects them from its Research API, downloads them from its web pages, watches them for the
person (frames decoded at ~1 fps) and emails each match once to a local SMTP server."""

from __future__ import annotations

import json
from datetime import date

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from gettok.cli import app
from gettok.db import session_scope
from gettok.models.schema import CampaignVideo, Download, DownloadStatus
from gettok.sandbox.config import FacePlacement, SandboxConfig
from gettok.sandbox.faces import write_variants
from tests.smtp_server import Mailbox, SmtpServer

DAY = date(2022, 12, 1)
PERSON, OTHER = "eileen_collins", "grace_hopper"


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    root = tmp_path_factory.mktemp("chain-faces")
    write_variants(PERSON, root / "examples", range(0, 3))
    write_variants(OTHER, root / "negatives", range(0, 2))
    # What the sandbox's videos show: photos the target was not enrolled with.
    [shown_person] = write_variants(PERSON, root / "shown", [60])
    [shown_other] = write_variants(OTHER, root / "shown", [60])
    return root, shown_person, shown_other


@pytest.fixture
def sandbox_config(faces, tmp_path_factory) -> SandboxConfig:
    _root, person, other = faces
    return SandboxConfig(
        seed=2022,
        fault_seed=1,
        videos_per_day=10,
        private_share=0.0,
        removed_share=0.0,
        slideshow_share=0.0,
        invisible_share=0.0,
        media_cache_dir=tmp_path_factory.mktemp("chain-media"),
        faces=[FacePlacement(image=person, share=0.4), FacePlacement(image=other, share=0.3)],
    )


def summary_line(output: str) -> dict:
    """The command's last JSON line (the runner also catches Prefect's log lines after it)."""
    lines = [line for line in output.splitlines() if line.startswith('{"targets"')]
    return json.loads(lines[-1])


def test_collect_download_watch_alert(prefect_harness, sandbox_env, monkeypatch, faces):
    from gettok.sandbox.faces import face_in

    root, person_photo, other_photo = faces
    tmp = sandbox_env.state.config.media_cache_dir.parent
    smtp_box = Mailbox()
    smtp = SmtpServer(smtp_box)
    for key, value in {
        **smtp.env(),
        "GETTOK_DATABASE_URL": f"sqlite:///{tmp / 'chain.db'}",
        "GETTOK_DOWNLOAD_REQUESTS_PER_S": "200",
        "GETTOK_TIKTOK_RETRY_WAIT_SCALE": "0.001",
    }.items():
        monkeypatch.setenv(key, value)
    campaign = tmp / "watched.toml"
    campaign.write_text(
        f'name = "watched"\nstart_date = "{DAY}"\nend_date = "{DAY}"\n'
        '[query]\nkeywords = ["Castillo", "Boluarte", "Peru", "golpe"]\n'
        '[[watch.targets]]\nname = "collins"\nkind = "face"\n'
        f'examples = ["{root / "examples"}"]\nnegatives = ["{root / "negatives"}"]\n'
    )
    runner = CliRunner()
    try:
        day = ["--start", str(DAY), "--end", str(DAY)]
        collected = runner.invoke(app, ["collect", "--campaign", str(campaign), *day])
        assert collected.exit_code == 0, collected.output
        downloaded = runner.invoke(app, ["download", "--campaign", str(campaign)])
        assert downloaded.exit_code == 0, downloaded.output
        watched = runner.invoke(app, ["watch", "--campaign", str(campaign)])
        assert watched.exit_code == 0, watched.output
        again = runner.invoke(app, ["watch", "--campaign", str(campaign)])
    finally:
        smtp.stop()

    url = f"sqlite:///{tmp / 'chain.db'}"
    with session_scope(url) as s:
        ids = set(s.scalars(select(CampaignVideo.video_id)))
        ok = set(s.scalars(select(Download.video_id).where(Download.status == DownloadStatus.ok)))
    corpus = sandbox_env.state.corpus
    shows = {v: face_in(corpus.get(v), sandbox_env.state.config) for v in ids}
    expected = sorted(v for v in ok if shows[v] == person_photo)
    assert expected and any(shows[v] == other_photo for v in ok)  # both people are on show

    summary = summary_line(watched.output)
    assert summary == {"targets": {"collins": {"checked": len(ok), "matched": expected}}}
    assert sorted(int(m["Subject"].rsplit(" ", 1)[1]) for m in smtp_box.messages) == expected
    assert all(len(list(m.iter_attachments())) == 1 for m in smtp_box.messages)
    assert again.exit_code == 0, again.output
    rerun = summary_line(again.output)
    assert rerun == {"targets": {"collins": {"checked": 0, "matched": []}}}
    assert len(smtp_box.messages) == len(expected)
