"""Campaign files: the shipped studies load, and bad files fail naming the problem."""

from datetime import date
from pathlib import Path

import pytest

from gettok.models.campaign import CampaignError, load_campaign, parse_campaign

CAMPAIGNS = Path(__file__).parents[1] / "campaigns"
REFERENCE = Path(__file__).parents[2] / "shared" / "reference"


def minimal(**overrides):
    data = {
        "name": "t",
        "start_date": "2022-12-01",
        "end_date": "2022-12-03",
        "query": {"region_codes": ["PE"], "keywords": ["Castillo"]},
    }
    data.update(overrides)
    return data


def test_peru_campaign_matches_the_papers_query():
    campaign = load_campaign(CAMPAIGNS / "peru_2022.toml")
    assert (campaign.start_date, campaign.end_date) == (date(2022, 11, 20), date(2023, 3, 1))
    query = campaign.query.to_api()
    assert query["and"] == [
        {"operation": "IN", "field_name": "region_code", "field_values": ["PE"]}
    ]
    by_field = {c["field_name"]: c["field_values"] for c in query["or"]}
    assert by_field["keyword"] == [
        "Castillo",
        "Presidente Castillo",
        "Pedro Castillo",
        "Dina Boluarte",
        "Presidente Boluarte",
        "Boluarte",
    ]
    assert (
        "golpedeestado" in by_field["hashtag_name"]
        and "pedrocastilloperú" in by_field["hashtag_name"]
    )
    assert campaign.stance.labels == ["support", "no support", "neutral"]


def test_ecuador_campaign_uses_every_term_as_keyword_and_strips_spaces():
    campaign = load_campaign(CAMPAIGNS / "ecuador_2024.toml")
    terms = (
        [
            t.strip()
            for t in (REFERENCE / "ecuador_2024_keywords_hashtags.txt").read_text().splitlines()
            if t.strip()
        ]
        if REFERENCE.exists()
        else None
    )
    if terms is not None:
        assert campaign.query.keywords == list(dict.fromkeys(terms))
    assert all(k == k.strip() for k in campaign.query.keywords)
    assert all(" " not in h for h in campaign.query.hashtags)
    assert campaign.query.region_codes == ["EC"]


def test_request_body_formats_dates_as_the_api_wants():
    campaign = parse_campaign(minimal())
    body = campaign.api_request_body(date(2022, 12, 1), date(2022, 12, 1))
    assert body["start_date"] == "20221201" and body["end_date"] == "20221201"
    assert body["max_count"] == 100


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"end_date": "2022-11-01"}, "end_date 2022-11-01 is before start_date 2022-12-01"),
        ({"start_date": "2022-13-45"}, "start_date"),
        ({"colour": "red"}, "colour: unknown field"),
        ({"query": {"region_codes": ["PER"], "keywords": ["x"]}}, "'PER' is not an ISO 3166-1"),
        ({"query": {"region_codes": ["PE"]}}, "the query selects nothing"),
        ({"query": {"keywords": ["  ", "#"]}}, "the query selects nothing"),
        ({"name": "../etc/passwd"}, "name"),
        ({"start_date": "1999-01-01", "end_date": "1999-01-02"}, "before 2016-01-01"),
        ({"stance": {"target": "x", "labels": ["a"]}}, "at least two distinct labels"),
    ],
)
def test_bad_campaigns_fail_naming_the_field(overrides, message):
    with pytest.raises(CampaignError) as excinfo:
        parse_campaign(minimal(**overrides), source="bad.toml")
    assert message in str(excinfo.value)
    assert str(excinfo.value).startswith("bad.toml: ")


def test_load_reports_toml_errors_and_nul_bytes(tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text('name = "x"\nstart_date = ')
    with pytest.raises(CampaignError, match="not valid TOML"):
        load_campaign(broken)
    nul = tmp_path / "nul.toml"
    nul.write_text('name = "x\x00"\n')
    with pytest.raises(CampaignError, match="NUL byte"):
        load_campaign(nul)
    with pytest.raises(CampaignError, match="no such campaign file"):
        load_campaign(tmp_path / "missing.toml")


def test_terms_are_cleaned_and_deduplicated():
    campaign = parse_campaign(
        minimal(
            query={
                "keywords": [" Noboa ", "Noboa", "fito\x00"],
                "hashtags": ["#SOSEcuador", "SOSEcuador"],
                "region_codes": ["ec"],
            }
        )
    )
    assert campaign.query.keywords == ["Noboa", "fito"]
    assert campaign.query.hashtags == ["SOSEcuador"]
    assert campaign.query.region_codes == ["EC"]


def test_explicit_and_or_not_groups_reach_the_query():
    campaign = parse_campaign(
        minimal(
            query={
                "keywords": ["Castillo"],
                "exclude_hashtags": ["fyp"],
                "video_length": ["MID"],
                "not": [{"field_name": "username", "field_values": ["spam_bot"]}],
            }
        )
    )
    query = campaign.query.to_api()
    assert {"operation": "IN", "field_name": "video_length", "field_values": ["MID"]} in query[
        "and"
    ]
    assert {"operation": "IN", "field_name": "hashtag_name", "field_values": ["fyp"]} in query[
        "not"
    ]
    assert {"operation": "IN", "field_name": "username", "field_values": ["spam_bot"]} in query[
        "not"
    ]


def test_invisible_marks_in_terms_are_removed_so_the_terms_match():
    campaign = parse_campaign(
        {
            "name": "marks",
            "start_date": "2024-01-01",
            "query": {
                # RLM after "perú", ZWSP before "boluarte" and inside a keyword, a BOM.
                "hashtags": ["#perú\u200f", "\u200bboluarte", "\ufeffgolpe"],
                "keywords": ["Dina\u200b Boluarte", "familia👨\u200d👩\u200d👧"],
            },
        }
    )
    assert campaign.query.hashtags == ["perú", "boluarte", "golpe"]
    # Joiners belong to the emoji sequence: kept.
    assert campaign.query.keywords == ["Dina Boluarte", "familia👨\u200d👩\u200d👧"]


@pytest.mark.parametrize("tag", ["peru#golpe", "#peru #golpe", "golpe de estado"])
def test_a_hashtag_that_is_several_is_refused_with_a_message(tag):
    with pytest.raises(CampaignError, match="is not one hashtag name"):
        parse_campaign({"name": "x", "start_date": "2024-01-01", "query": {"hashtags": [tag]}})
