"""Validation on a real database: sampling is seeded and blind, sheets are checked before anything
is stored, and codes constructed by hand score to the figures worked out in test_validate_score."""

import csv
from collections import Counter

import pytest
from sqlalchemy import func, select, update

from gettok.db import session_scope
from gettok.models.schema import Annotation, ValidationCode, ValidationItem, ValidationScore, Video
from gettok.tasks.validate import SheetError, create_sample, score_sample, store_sheets
from gettok.tasks.validate.sample import SampleError
from tests.dataset_for_outputs import build_dataset
from tests.test_validate_score import TABLE

STANCE = ["support", "no support", "neutral"]


def read_rows(path):
    with path.open(encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


def write_rows(path, rows):
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def stance_videos(data):
    return {v.id: v.stance for v in data.videos if v.whisper is not None and v.stance}


def test_sample_is_seeded_stratified_blind_and_recorded(db_url, tmp_path):
    data = build_dataset(db_url)
    truth = stance_videos(data)
    first = create_sample(
        db_url, "peru", "stance", 6, tmp_path / "a.csv", seed=3, stratify="label",
        stance_labels=STANCE, coders=["alice", "bob"],
    )  # fmt: skip
    again = create_sample(
        db_url, "peru", "stance", 6, tmp_path / "b.csv", seed=3, stratify="label",
        stance_labels=STANCE,
    )  # fmt: skip
    rows = read_rows(first.sheet)
    ids = [int(r["video_id"]) for r in rows]
    assert ids == [int(r["video_id"]) for r in read_rows(again.sheet)]  # same seed, same sample
    assert first.sample_id != again.sample_id
    assert set(ids) <= set(truth)  # only videos with an ok stance annotation
    assert Counter(truth[i] for i in ids) == {"support": 2, "no support": 2, "neutral": 2}
    header = list(rows[0])
    assert {"code_alice", "code_bob", "flag_alice", "video_url", "transcript"} <= set(header)
    # Blind: neither the model's label nor its confidence is anywhere in the sheet.
    assert not {"stance", "label", "confidence", "stratum"} & set(header)
    assert all(r["allowed_labels"] == "support | no support | neutral | skip" for r in rows)
    assert all(r["video_url"].endswith(f"/video/{r['video_id']}") for r in rows)
    with session_scope(db_url) as s:
        items = s.scalars(
            select(ValidationItem).where(ValidationItem.sample_id == first.sample_id)
        ).all()
        assert sorted(i.video_id for i in items) == sorted(ids)
        assert {i.stratum for i in items} == set(STANCE)
    other = create_sample(db_url, "peru", "stance", 6, tmp_path / "c.csv", seed=4,
                          stance_labels=STANCE)  # fmt: skip
    assert [int(r["video_id"]) for r in read_rows(other.sheet)] != ids
    with pytest.raises(SampleError, match="only .* videos of the campaign have a stance"):
        create_sample(db_url, "peru", "stance", 10_000, tmp_path / "d.csv", stance_labels=STANCE)


def set_model_answers(url, sample_id):
    """Give the sampled annotations the model labels and confidences of the hand-worked TABLE."""
    with session_scope(url) as s:
        items = s.scalars(
            select(ValidationItem)
            .where(ValidationItem.sample_id == sample_id)
            .order_by(ValidationItem.position)
        ).all()
        for item, (label, confidence, _, _) in zip(items, TABLE, strict=True):
            s.execute(
                update(Annotation)
                .where(Annotation.id == item.annotation_id)
                .values(value={"label": label, "confidence": confidence, "rationale": "r"})
            )


def test_coded_sheets_score_to_the_hand_computed_figures(db_url, tmp_path):
    build_dataset(db_url)
    sample = create_sample(db_url, "peru", "stance", 10, tmp_path / "sheet.csv", seed=1,
                           stance_labels=STANCE, coders=["bob"])  # fmt: skip
    set_model_answers(db_url, sample.sample_id)
    rows = read_rows(sample.sheet)
    # bob in the sheet's own column (labels typed with other capitals); alice in her own file.
    for row, (_, _, _, bob) in zip(rows, TABLE, strict=True):
        row["code_bob"] = bob.upper()
    rows[0]["flag_bob"] = "x"
    alice = [
        {"sample_id": r["sample_id"], "video_id": r["video_id"], "code": a}
        for r, (_, _, a, _) in zip(rows, TABLE, strict=True)
    ]
    sheets = [write_rows(tmp_path / "coded.csv", rows), write_rows(tmp_path / "alice.csv", alice)]

    assert store_sheets(db_url, "peru", sheets) == sample.sample_id
    result = score_sample(db_url, "peru", sample.sample_id, target_accuracy=0.8)

    f = result.figures
    assert (f.n, f.coded, f.coders) == (8, 10, ["alice", "bob"])
    assert f.kappa_model_vs_majority == pytest.approx(3 / 7)
    assert f.alpha_coders == pytest.approx(5 / 7)
    assert f.alpha_with_model == pytest.approx(154 / 299)
    assert f.macro_f1 == pytest.approx(11 / 18)
    assert f.flag_below == 0.85
    assert list(result.by_prompt) == ["stance@stance-hash-"]
    with session_scope(db_url) as s:
        assert s.scalar(select(func.count()).select_from(ValidationCode)) == 20
        assert s.scalar(select(func.count()).where(ValidationCode.flagged)) == 1
        stored = s.scalars(select(ValidationScore)).one()
        assert stored.n == 8 and stored.figures["kind"] == "stance"
    # Storing the same sheet again replaces codes instead of adding rows.
    store_sheets(db_url, "peru", sheets[:1])
    with session_scope(db_url) as s:
        assert s.scalar(select(func.count()).select_from(ValidationCode)) == 20


def test_bad_sheet_names_every_bad_row_and_stores_nothing(db_url, tmp_path):
    build_dataset(db_url)
    sample = create_sample(db_url, "peru", "sentiment", 5, tmp_path / "sheet.csv", seed=2,
                           coders=["ana"])  # fmt: skip
    rows = read_rows(sample.sheet)
    with session_scope(db_url) as s:
        stray = s.scalar(select(Video.id).where(Video.username == "someone_else"))
        sampled = {int(r["video_id"]) for r in rows}
        outside = s.scalar(select(Annotation.video_id).where(Annotation.video_id.not_in(sampled)))
    for row in rows:
        row["code_ana"] = "positive"
    rows[0]["code_ana"] = "happy"  # line 2: unknown label
    rows[1]["video_id"] = ""  # line 3: missing id
    rows[2]["video_id"] = "7.17E+18"  # line 4: rounded by a spreadsheet
    rows.append(dict(rows[3]))  # line 7: duplicate of line 5
    rows.append({**rows[4], "video_id": str(stray)})  # line 8: another campaign's video
    rows.append({**rows[4], "video_id": str(outside)})  # line 9: not in this sample
    path = write_rows(tmp_path / "bad.csv", rows)

    with pytest.raises(SheetError) as caught:
        store_sheets(db_url, "peru", [path])

    problems = "\n".join(caught.value.problems)
    assert "bad.csv row 2, code_ana: 'happy' is not one of positive, negative, neutral" in problems
    assert "bad.csv row 3: missing video_id" in problems
    assert "bad.csv row 4: video_id '7.17E+18' is not a whole number" in problems
    assert f"bad.csv row 7: video {rows[3]['video_id']} again (first on row 5)" in problems
    assert f"bad.csv row 8: video {stray} is not in campaign peru" in problems
    assert f"bad.csv row 9: video {outside} is not in sample {sample.sample_id}" in problems
    assert len(caught.value.problems) == 6
    with session_scope(db_url) as s:
        assert s.scalar(select(func.count()).select_from(ValidationCode)) == 0


def test_sheet_without_ids_or_coders_is_refused(sqlite_url, tmp_path):
    build_dataset(sqlite_url)
    path = write_rows(tmp_path / "x.csv", [{"video_id": "1", "notes": ""}])
    with pytest.raises(SheetError, match="no sample_id column") as caught:
        store_sheets(sqlite_url, "peru", [path])
    assert "x.csv: no code_<coder> column" in str(caught.value)


def test_summaries_are_judged_with_the_summary_in_the_sheet(db_url, tmp_path):
    data = build_dataset(db_url)
    summarised = [v.id for v in data.videos if v.whisper is not None][:3]
    with session_scope(db_url) as s:
        for i, video_id in enumerate(summarised):
            s.add(
                Annotation(
                    video_id=video_id, kind="summary", value={"summary": f"resumen {i}"},
                    model="gpt-4o-mini", prompt_id="summary", prompt_hash="summary-hash-1",
                )
            )  # fmt: skip
    sample = create_sample(db_url, "peru", "summary_check", 3, tmp_path / "s.csv", seed=1,
                           coders=["ana"])  # fmt: skip
    rows = read_rows(sample.sheet)
    by_video = {int(r["video_id"]): r for r in rows}
    assert {by_video[v]["text_to_check"] for v in summarised} == {"resumen 0", "resumen 1",
                                                                  "resumen 2"}  # fmt: skip
    assert rows[0]["allowed_labels"] == "accurate | partly | inaccurate | skip"
    for row, code in zip(rows, ["accurate", "partly", "Accurate"], strict=True):
        row["code_ana"] = code
    store_sheets(db_url, "peru", [write_rows(tmp_path / "coded.csv", rows)])
    figures = score_sample(db_url, "peru", sample.sample_id).figures
    assert (figures.n, figures.accuracy) == (3, 2 / 3)  # two of three judged accurate
    assert figures.confidence_bins == [] and figures.flag_below is None
