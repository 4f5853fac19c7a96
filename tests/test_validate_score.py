"""Agreement figures on codes whose answers were worked out by hand (in the comments below)."""

import pytest

from gettok.tasks.validate.score import ScoredVideo, majority_code, score_codes

LABELS = ["support", "no support", "neutral"]
S, X, N = LABELS  # X: "no support"
# (model label, model confidence, alice's code, bob's code)
TABLE = [
    (S, 0.95, S, S),
    (S, 0.90, S, S),
    (S, 0.85, X, X),
    (X, 0.90, X, X),
    (X, 0.70, X, N),  # alice and bob tie: no majority, not scored against the model
    (X, 0.60, N, N),
    (N, 0.55, N, N),
    (N, 0.40, S, S),
    (S, 0.30, X, S),  # tie
    (N, 0.95, N, N),
]


def videos(table=TABLE):
    return [ScoredVideo(m, c, {"alice": a, "bob": b}) for m, c, a, b in table]


def test_kappa_alpha_and_f1_match_the_hand_computation():
    f = score_codes(videos(), LABELS, target_accuracy=0.8)
    # Majority known on 8 videos; model right on 5 of them.
    assert (f.n, f.coded, f.accuracy) == (8, 10, 5 / 8)
    # truth S,S,X,X,N,N,S,N vs model S,S,S,X,X,N,N,N: p_o = 5/8, marginals 3/2/3 on both sides,
    # p_e = (9 + 4 + 9) / 64 = 22/64, kappa = (40 - 22) / (64 - 22) = 3/7.
    assert f.kappa_model_vs_majority == pytest.approx(3 / 7, abs=1e-12)
    # alice agrees on 6 of 10; marginals alice 3/4/3, model 4/3/3: p_e = 33/100 -> 27/67.
    # bob agrees on 6 of 10; marginals bob 4/2/4: p_e = 34/100 -> 26/66.
    assert f.kappa_model_vs_coder["alice"] == pytest.approx(27 / 67, abs=1e-12)
    assert f.kappa_model_vs_coder["bob"] == pytest.approx(26 / 66, abs=1e-12)
    # Coincidences among coders: SS 6, XX 4, NN 6, XN=NX=1, XS=SX=1; n_S 7, n_X 6, n_N 7;
    # alpha = 1 - 19 * 4 / (400 - 134) = 5/7.
    assert f.alpha_coders == pytest.approx(5 / 7, abs=1e-12)
    # With the model as a third coder (pairs weigh 1/2): SS 8, XX 5, NN 7, off-diagonal 10;
    # n_S 11, n_X 9, n_N 10; alpha = 1 - 29 * 10 / (900 - 302) = 154/299.
    assert f.alpha_with_model == pytest.approx(154 / 299, abs=1e-12)
    # Per label: support P=R=2/3, no support P=R=1/2, neutral P=R=2/3; macro F1 = 11/18.
    by_label = {s.label: s for s in f.per_label}
    assert by_label[S].precision == pytest.approx(2 / 3) and by_label[S].recall == pytest.approx(
        2 / 3
    )
    assert by_label[X].f1 == pytest.approx(1 / 2) and by_label[X].support == 2
    assert by_label[N].f1 == pytest.approx(2 / 3) and by_label[N].support == 3
    assert f.macro_f1 == pytest.approx(11 / 18, abs=1e-12)
    # Rows: majority code; columns: model label.
    assert f.confusion == [[2, 0, 1], [1, 1, 0], [0, 1, 2]]


def test_confidence_bins_and_the_flag_threshold():
    f = score_codes(videos(), LABELS, target_accuracy=0.8)
    bins = {(b.low, b.high): (b.n, b.accuracy) for b in f.confidence_bins}
    assert bins == {
        (0.0, 0.5): (1, 0.0),
        (0.5, 0.6): (1, 1.0),
        (0.6, 0.7): (1, 0.0),
        (0.8, 0.9): (1, 0.0),
        (0.9, 1.0): (4, 1.0),
    }
    top = next(b for b in f.confidence_bins if b.low == 0.9)
    assert top.mean_confidence == pytest.approx((0.95 + 0.9 + 0.9 + 0.95) / 4)
    # At >= 0.4: 5/8; >= 0.55: 5/7; >= 0.6: 4/6; >= 0.85: 4/5 = 0.8, the first to reach 0.8.
    assert f.flag_below == 0.85
    assert score_codes(videos(), LABELS, target_accuracy=0.95).flag_below == 0.9
    assert score_codes(videos(), LABELS, target_accuracy=1.01).flag_below is None


def test_headline_is_what_the_json_line_carries():
    f = score_codes(videos(), LABELS)
    assert f.headline() == {
        "n": 8,
        "kappa_model_vs_majority": pytest.approx(3 / 7),
        "alpha_coders": pytest.approx(5 / 7),
        "macro_f1": pytest.approx(11 / 18),
    }


def test_majority_needs_a_strict_winner():
    assert majority_code({"a": S, "b": S, "c": X}) == S
    assert majority_code({"a": S, "b": X}) is None
    assert majority_code({"a": None, "b": X}) == X
    assert majority_code({"a": None}) is None


def test_undefined_figures_are_none_not_invented():
    one_coder = [ScoredVideo(S, 0.9, {"alice": S}), ScoredVideo(S, 0.9, {"alice": S})]
    f = score_codes(one_coder, LABELS)
    assert f.alpha_coders is None  # one coder: nothing to agree with
    assert f.kappa_model_vs_majority is None  # one label on both sides: kappa is 0/0
    assert f.accuracy == 1.0 and f.n == 2
    nobody = score_codes([ScoredVideo(S, 0.9, {"alice": None})], LABELS)
    assert (nobody.n, nobody.coded, nobody.macro_f1, nobody.confusion) == (0, 0, None, [])
