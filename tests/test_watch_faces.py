"""Face targets: enrolment from example photos, the threshold, clear load errors, and the
held-out evaluation (`gettok watch evaluate`).

The photos are variants (crop, scale, rotation, light, mirror, background) of the shipped
public-domain portraits: one photo per person, so these tests check the machinery and the
separation of two people, not recognition across truly different photos of one person.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from gettok.cli import app
from gettok.models.campaign import CampaignError, load_campaign
from gettok.sandbox.faces import PORTRAITS, write_variants
from gettok.tasks.watch.face_target import (
    TargetError,
    enrol_face_target,
    evaluate_face_target,
)
from gettok.tasks.watch.faces import choose_threshold

ROOT = Path(__file__).parents[1]
PERSON, OTHER = "eileen_collins", "grace_hopper"


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """examples/ and negatives/ to enrol with; held_out/{person,others}/ never enrolled."""
    root = tmp_path_factory.mktemp("faces")
    write_variants(PERSON, root / "examples", range(0, 4))
    write_variants(OTHER, root / "negatives", range(0, 3))
    write_variants(PERSON, root / "held_out" / "person", range(20, 30))
    write_variants(OTHER, root / "held_out" / "others", range(20, 30))
    shutil.copy(PORTRAITS / "cameraman.jpg", root / "held_out" / "others")  # no detectable face
    return root


@pytest.fixture(scope="module")
def person(photos):
    return enrol_face_target("collins", [photos / "examples"], [photos / "negatives"])


def test_threshold_stays_at_the_default_unless_the_examples_say_otherwise():
    assert choose_threshold([0.1, 0.2], [0.8, 0.9]) == 0.6  # well apart: dlib's calibration
    assert choose_threshold([0.1, 0.2], [0.5, 0.9]) == 0.35  # a look-alike at 0.5: stricter
    assert choose_threshold([0.1, 0.65], [0.9]) == 0.7  # a far example: looser, up to 0.7
    assert choose_threshold([0.1, 0.85], [0.95]) == 0.6  # never blunter than 0.7
    assert choose_threshold([0.1, 0.2], [0.25, 0.9]) == 0.6  # nor stricter than 0.3
    assert choose_threshold([0.3], []) == 0.6  # no negatives: nothing to tune on
    assert choose_threshold([math.inf, 0.2], [0.9]) == 0.6  # a photo with no face is a miss


def test_enrolled_person_is_recognised_in_other_photos_and_someone_else_is_not(person, photos):
    assert person.threshold_from == "tuned on 4 examples and 3 negatives"
    assert len(person.examples) == 4 and person.embeddings.shape == (4, 128)
    report = evaluate_face_target(
        person, [photos / "held_out" / "person"], [photos / "held_out" / "others"]
    )
    assert (report["positives"], report["negatives"], report["no_face"]) == (10, 11, 1)
    assert report["recall"] == 1.0 and report["precision"] == 1.0
    same = report["distances"]["positives"].values()
    others = [d for d in report["distances"]["negatives"].values() if d is not None]
    assert max(same) < person.threshold < min(others)
    assert report["distances"]["negatives"]["cameraman.jpg"] is None


def test_unusable_examples_are_clear_errors_naming_the_file(tmp_path, photos):
    with pytest.raises(TargetError, match=r"cameraman\.jpg: no detectable face"):
        enrol_face_target("x", [photos / "examples", PORTRAITS / "cameraman.jpg"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(TargetError, match="no pictures in examples folder"):
        enrol_face_target("x", [tmp_path / "empty"])
    (tmp_path / "notes.jpg").write_text("not a picture")
    with pytest.raises(TargetError, match=r"notes\.jpg: not a readable picture"):
        enrol_face_target("x", [tmp_path / "notes.jpg"])

    campaign = tmp_path / "c.toml"
    base = 'name = "c"\nstart_date = "2024-01-01"\n[query]\nkeywords = ["x"]\n'
    campaign.write_text(base + '[[watch.targets]]\nname = "p"\nexamples = ["faces/p/"]\n')
    with pytest.raises(CampaignError, match=r"p\.examples: .*faces/p not found|faces/p"):
        load_campaign(campaign)
    campaign.write_text(base + '[[watch.targets]]\nname = "p"\nkind = "face"\n')
    with pytest.raises(CampaignError, match="target 'p' \\(face\\) needs examples"):
        load_campaign(campaign)


def test_watch_command_refuses_a_target_without_a_face(settings_env):
    campaign = settings_env / "c.toml"
    (settings_env / "faces").mkdir()
    shutil.copy(PORTRAITS / "cameraman.jpg", settings_env / "faces")
    campaign.write_text(
        'name = "c"\nstart_date = "2024-01-01"\n[query]\nkeywords = ["x"]\n'
        '[[watch.targets]]\nname = "p"\nexamples = ["faces/"]\n'
    )
    run = CliRunner().invoke(app, ["watch", "--campaign", str(campaign)])
    assert run.exit_code == 2
    assert "target 'p'" in run.output and "cameraman.jpg: no detectable face" in run.output


def test_campaign_show_lists_the_watch_targets(settings_env):
    run = CliRunner().invoke(app, ["campaign", "show", str(ROOT / "campaigns" / "peru_2022.toml")])
    assert run.exit_code == 0, run.output
    assert "watch target eileen_collins (face): 4 examples, 3 negatives, threshold" in run.output


def test_watch_evaluate_reports_precision_and_recall_on_held_out_photos(settings_env, photos):
    campaign = settings_env / "c.toml"
    campaign.write_text(
        'name = "c"\nstart_date = "2024-01-01"\n[query]\nkeywords = ["x"]\n'
        f'[[watch.targets]]\nname = "collins"\nexamples = ["{photos / "examples"}"]\n'
        f'negatives = ["{photos / "negatives"}"]\n'
    )
    run = CliRunner().invoke(
        app,
        [
            "watch", "evaluate", "--campaign", str(campaign), "--target", "collins",
            "--positives", str(photos / "held_out" / "person"),
            "--negatives", str(photos / "held_out" / "others"),
        ],
    )  # fmt: skip
    assert run.exit_code == 0, run.output
    report = json.loads(run.output.strip().splitlines()[-1])
    assert (report["precision"], report["recall"], report["f1"]) == (1.0, 1.0, 1.0)
    assert report["chosen_threshold"] == 0.6 and report["true_positives"] == 10
    assert "precision 1.000  recall 1.000" in run.output

    missing = CliRunner().invoke(
        app,
        ["watch", "evaluate", "--campaign", str(campaign), "--target", "nobody",
         "--positives", ".", "--negatives", "."],
    )  # fmt: skip
    assert missing.exit_code == 2 and "no face target 'nobody'" in missing.output


def test_the_cnn_detector_finds_the_face_the_hog_detector_finds():
    from gettok.sandbox.faces import photo_variant
    from gettok.tasks.watch.faces import FaceSettings, embed, find_faces, shrink

    picture = shrink(photo_variant(PERSON, 3), 640)
    [cnn] = find_faces(picture, FaceSettings(detector="cnn"))
    [hog] = find_faces(picture, FaceSettings())
    left, top = max(cnn.box[0], hog.box[0]), max(cnn.box[1], hog.box[1])
    right, bottom = min(cnn.box[2], hog.box[2]), min(cnn.box[3], hog.box[3])
    assert right - left > 80 and bottom - top > 80  # the same face
    assert np.linalg.norm(embed(picture, cnn) - embed(picture, hog)) < 0.1
