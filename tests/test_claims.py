"""Work claims: concurrent workers split the work, never share an item, and leases expire."""

from concurrent.futures import ThreadPoolExecutor

from gettok.claims import claim, release


def test_two_workers_never_hold_the_same_item(db_url):
    ids = list(range(1, 401))
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda w: claim(db_url, "download", ids, worker=f"w{w}"), range(4)))
    held = [i for r in results for i in r]
    assert sorted(held) == ids  # every item claimed exactly once


def test_release_and_expiry_make_items_claimable_again(db_url):
    assert claim(db_url, "transcribe", [1, 2, 3], worker="a") == [1, 2, 3]
    assert claim(db_url, "transcribe", [1, 2, 3], worker="b") == []
    assert claim(db_url, "download", [1], worker="b") == [1]  # stages are independent
    release(db_url, "transcribe", [2], worker="a")
    assert claim(db_url, "transcribe", [1, 2, 3], worker="b") == [2]
    assert claim(db_url, "frames", [9], worker="dead", lease_s=-1) == [9]  # already expired
    assert claim(db_url, "frames", [9], worker="alive") == [9]


def test_release_only_drops_the_callers_claims(db_url):
    assert claim(db_url, "enrich", [5], worker="a") == [5]
    release(db_url, "enrich", [5], worker="b")
    assert claim(db_url, "enrich", [5], worker="b") == []
