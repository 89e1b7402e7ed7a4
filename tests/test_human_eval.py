"""course_utils.human_eval: safe rating files, and the statistics of a room's ratings."""

from __future__ import annotations

import math
import multiprocessing as mp

import numpy as np
import pytest

from course_utils import human_eval as he


def pair(rater, a, b, shown_left, choice, model_a="gan", model_b="vae"):
    return he.Rating(rater=rater, task="pairwise", item_a=a, item_b=b, shown_left=shown_left, choice=choice,
                     model_a=model_a, model_b=model_b)


def test_rating_checks_its_fields_and_finds_the_winner():
    assert pair("r", "g1", "v1", "g1", "left").winner() == "gan"
    assert pair("r", "g1", "v1", "v1", "left").winner() == "vae"  # the sides were swapped
    assert pair("r", "g1", "v1", "v1", "right").winner() == "gan"
    assert pair("r", "g1", "v1", "g1", "tie").winner() is None
    with pytest.raises(ValueError, match="choice"):
        pair("r", "g1", "v1", "g1", "both")
    with pytest.raises(ValueError, match="rater"):
        pair("a,b", "g1", "v1", "g1", "left")
    with pytest.raises(ValueError, match="shown_left"):
        pair("r", "g1", "v1", "x", "left")


def test_log_round_trip_with_a_header_once(tmp_path):
    log = he.RatingsLog(tmp_path / "room" / "ana.csv")
    log.append(pair("ana", "g1", "v1", "g1", "left"))
    log.append(he.Rating(rater="ana", task="quiz", item_a="t7", choice="real", model_a="real"))
    lines = log.path.read_text().splitlines()
    assert lines[0] == ",".join(he.FIELDS) and len(lines) == 3
    rows = log.read()
    assert [r.task for r in rows] == ["pairwise", "quiz"] and all(r.time for r in rows)
    assert he.load_ratings(tmp_path / "room") == rows


def test_a_torn_last_line_is_ignored_then_cut(tmp_path):
    log = he.RatingsLog(tmp_path / "r.csv")
    log.append(pair("ana", "g1", "v1", "g1", "left"))
    with open(log.path, "a") as fh:
        fh.write("ana,2026-01-01,pairwise,g2,v2,g2,ri")  # a crash in the middle of a row
    assert len(log.read()) == 1
    log.append(pair("ana", "g3", "v3", "v3", "right"))
    assert [r.item_a for r in log.read()] == ["g1", "g3"]
    assert "g2" not in log.path.read_text()


def _writer(path, name, n):
    log = he.RatingsLog(path)
    for i in range(n):
        log.append(pair(name, f"g{i}", f"v{i}", f"g{i}", "left"))


@pytest.mark.slow  # starts two Python processes (spawn: portable to macOS and Windows)
def test_two_processes_appending_at_once_lose_nothing(tmp_path):
    path = tmp_path / "shared.csv"
    procs = [mp.get_context("spawn").Process(target=_writer, args=(path, name, 150)) for name in ("ana", "bo")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    rows = he.RatingsLog(path).read()
    assert len(rows) == 300 and sum(r.rater == "ana" for r in rows) == 150
    assert path.read_text().count(",".join(he.FIELDS)) == 1


def test_wilson_interval_known_values():
    low, high = he.wilson_interval(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-4) and high == pytest.approx(0.9433, abs=1e-4)
    assert he.wilson_interval(0, 5)[0] == 0.0 and he.wilson_interval(5, 5)[1] == 1.0
    with pytest.raises(ValueError):
        he.wilson_interval(0, 0)


def test_win_rates_count_ties_as_half():
    ratings = [pair("r", "g", "v", "g", "left"), pair("r", "g", "v", "v", "left"), pair("r", "g", "v", "g", "tie")]
    rates = he.win_rates(ratings)
    assert rates["gan"]["wins"] == 1.5 and rates["vae"]["wins"] == 1.5 and rates["gan"]["n"] == 3
    assert rates["gan"]["rate"] == 0.5 and rates["gan"]["ties"] == 1


def test_bradley_terry_satisfies_the_likelihood_equations():
    outcomes = {("a", "b"): (7, 3), ("b", "c"): (6, 4), ("a", "c"): (8, 2)}  # (wins of first, wins of second)
    ratings = []
    for (m1, m2), (w1, w2) in outcomes.items():
        ratings += [pair("r", f"{m1}{i}", f"{m2}{i}", f"{m1}{i}", "left", m1, m2) for i in range(w1)]
        ratings += [pair("r", f"{m1}{i}", f"{m2}{i}", f"{m1}{i}", "right", m1, m2) for i in range(w2)]
    s = he.bradley_terry(ratings)
    assert sum(s.values()) == pytest.approx(1.0) and s["a"] > s["b"] > s["c"]
    wins = {"a": 15, "b": 9, "c": 6}
    for m in s:  # at the maximum, each model's expected wins equal its observed wins
        expected = sum((w1 + w2) * s[m] / (s[m1] + s[m2]) for (m1, m2), (w1, w2) in outcomes.items() if m in (m1, m2))
        assert expected == pytest.approx(wins[m], rel=1e-6)


def test_quiz_accuracy_against_chance():
    answers = [he.Rating(rater="r", task="quiz", item_a=f"i{i}", model_a="real" if i % 2 else "gan",
                         choice=("real" if i % 2 else "generated") if i < 15 else ("generated" if i % 2 else "real"))
               for i in range(20)]
    result = he.quiz_accuracy(answers)
    assert result["right"] == 15 and result["accuracy"] == 0.75
    assert result["p_value"] == pytest.approx(0.04139, abs=1e-4)  # two-sided binomial test, 15 of 20
    with pytest.raises(ValueError, match="no quiz"):
        he.quiz_accuracy([])


def test_fleiss_kappa_against_a_known_answer():
    table = [(0, 0, 0, 0, 14), (0, 2, 6, 4, 2), (0, 0, 3, 5, 6), (0, 3, 9, 2, 0), (2, 2, 8, 1, 1),
             (7, 7, 0, 0, 0), (3, 2, 6, 3, 0), (2, 5, 3, 2, 2), (6, 5, 2, 1, 0), (0, 2, 2, 3, 7)]
    counts = [{k: v for k, v in zip("abcde", row, strict=True)} for row in table]
    assert he.fleiss_kappa(counts) == pytest.approx(0.210, abs=5e-4)  # a standard worked example: 14 raters, 10 items
    with pytest.raises(ValueError, match="same number of raters"):
        he.fleiss_kappa([{"a": 2}, {"a": 3}])


# --- agreement of a merged room ---------------------------------------------------------------------------


def test_rater_labels_name_the_winners_position_in_the_sorted_pair_whatever_the_sides():
    ratings = [pair("ana", "g1", "v1", "g1", "left"), pair("bo", "g1", "v1", "v1", "right"),  # both: g1 won
               pair("ana", "g2", "v2", "g2", "tie"), pair("bo", "v2", "g2", "g2", "right", "vae", "gan")]
    labels = he.rater_labels(ratings)
    assert labels == {"ana": {"g1|v1": "first", "g2|v2": "tie"}, "bo": {"g1|v1": "first", "g2|v2": "second"}}
    quiz = [he.Rating(rater="ana", task="quiz", item_a="t1", choice="real", model_a="real")]
    assert he.rater_labels(quiz, "quiz") == {"ana": {"t1": "real"}}
    with pytest.raises(ValueError, match="task"):
        he.rater_labels(ratings, "poll")


def test_agreement_uses_cohen_for_two_and_fleiss_for_more_on_common_items():
    from sklearn.metrics import cohen_kappa_score

    a = ["left", "left", "right", "tie", "right", "left"]
    b = ["left", "right", "right", "tie", "right", "left"]
    ratings = [pair(rater, f"g{i}", f"v{i}", f"g{i}", choice)
               for rater, choices in (("ana", a), ("bo", b)) for i, choice in enumerate(choices)]
    ratings.append(pair("ana", "g9", "v9", "g9", "left"))  # rated by one rater only: left out
    two = he.agreement(ratings)
    assert two["method"] == "Cohen" and two["items"] == 6 and two["raters"] == 2
    assert two["kappa"] == pytest.approx(cohen_kappa_score(a, b))
    ratings += [pair("cy", f"g{i}", f"v{i}", f"g{i}", c) for i, c in enumerate(a)]
    three = he.agreement(ratings)
    counts = [{k: [a[i], b[i], a[i]].count(k) for k in {a[i], b[i]}} for i in range(6)]
    assert three["method"] == "Fleiss" and three["kappa"] == pytest.approx(he.fleiss_kappa(counts))
    same = [pair(rater, f"g{i}", f"v{i}", f"g{i}", "left") for rater in ("ana", "bo") for i in range(4)]
    assert he.agreement(same)["kappa"] == 1.0  # one label throughout: chance agreement is total, kappa given as 1
    with pytest.raises(ValueError, match="at least two raters"):
        he.agreement(ratings[:3])
    with pytest.raises(ValueError, match="no pairwise item"):
        he.agreement([pair("ana", "g1", "v1", "g1", "left"), pair("bo", "g2", "v2", "g2", "left")])


def _room(n_raters, agree, seed=0):
    """Raters on a design like notebook 07's: three pair types; coin-flippers, or all copying one coin flip."""
    import random

    rng = random.Random(seed)
    types = [("gan", "vae"), ("real", "gan"), ("real", "vae")]
    truth = [rng.choice(["left", "right", "tie"]) for _ in range(600)]
    ratings = []
    for rater in (f"r{k}" for k in range(n_raters)):
        for i, (ma, mb) in enumerate(types[j % 3] for j in range(600)):
            a, b = f"{ma}{i}", f"{mb}{i}"
            choice = truth[i] if agree else rng.choice(["left", "right"])  # no ties: the old labels' worst case
            ratings.append(pair(rater, a, b, a, choice, ma, mb))
    return ratings


@pytest.mark.parametrize("n_raters", [2, 3])
def test_coin_flipping_raters_agree_at_chance_and_agreeing_raters_fully(n_raters):
    for seed in range(3):
        assert abs(he.agreement(_room(n_raters, agree=False, seed=seed))["kappa"]) < 0.1
    assert he.agreement(_room(n_raters, agree=True))["kappa"] == pytest.approx(1.0)


def test_ratings_dir_follows_its_environment_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("COURSE_RATINGS_DIR", raising=False)
    assert he.ratings_dir().name == "ratings"  # data/ratings/ by default
    monkeypatch.setenv("COURSE_RATINGS_DIR", str(tmp_path / "room"))
    assert he.ratings_dir() == (tmp_path / "room").resolve()


# --- intervals over raters and items, side bias, room sizes ----------------------------------------------------


def room(n_raters, n_items, item_p, seed=0, model_a="gan", model_b="vae"):
    """Every rater rates every item; item i is won by model_a with probability item_p[i] for every rater."""
    import random

    rng, out = random.Random(seed), []
    for r in range(n_raters):
        for i in range(n_items):
            left = f"a{i}" if rng.random() < 0.5 else f"b{i}"
            a_wins = rng.random() < item_p[i]
            choice = "left" if a_wins == (left == f"a{i}") else "right"
            out.append(pair(f"r{r}", f"a{i}", f"b{i}", left, choice, model_a, model_b))
    return out


def test_two_way_bootstrap_is_wider_than_wilson_when_items_decide():
    items = [0.95] * 5 + [0.05] * 5  # each item is won by the same side for nearly every rater
    ratings = room(20, 10, items)
    t = he.two_way_bootstrap(ratings, "gan", resamples=2000, seed=1)
    w = he.win_rates(ratings)["gan"]
    assert (t["raters"], t["items"], t["n"]) == (20, 10, 200) and t["rate"] == w["rate"]
    assert t["low"] < w["low"] and t["high"] > w["high"]  # 200 ratings of 10 items: far less than 200 coins
    assert t["high"] - t["low"] > 1.5 * (w["high"] - w["low"])
    assert he.two_way_bootstrap(ratings, "gan", resamples=500, seed=1) == \
        he.two_way_bootstrap(ratings, "gan", resamples=500, seed=1)  # seeded
    with pytest.raises(ValueError, match="no pairwise rating"):
        he.two_way_bootstrap(ratings, "real")


def test_two_way_bootstrap_counts_a_tie_as_half_and_the_loser_side():
    ratings = [pair("r", "g1", "v1", "g1", "tie"), pair("r", "g2", "v2", "v2", "left")]
    assert he.two_way_bootstrap(ratings, "gan", resamples=50)["rate"] == 0.25
    assert he.two_way_bootstrap(ratings, "vae", resamples=50)["rate"] == 0.75


def test_comparison_groups_split_models_that_never_met():
    ratings = [pair("r", "g1", "v1", "g1", "left"), pair("r", "v2", "x2", "v2", "left", "vae", "real"),
               pair("r", "m1", "n1", "m1", "tie", "chorale", "bigram")]
    assert he.comparison_groups(ratings) == [["gan", "real", "vae"], ["bigram", "chorale"]]


def test_bradley_terry_intervals_hold_the_fit_and_separate_clear_differences():
    import random

    rng, ratings = random.Random(3), []
    strength = {"a": 9.0, "b": 1.0, "c": 1 / 9}
    for r in range(5):
        for i in range(60):
            m1, m2 = [("a", "b"), ("b", "c"), ("a", "c")][i % 3]
            won = rng.random() < strength[m1] / (strength[m1] + strength[m2])
            ratings.append(pair(f"r{r}", f"{m1}{i}", f"{m2}{i}", f"{m1}{i}", "left" if won else "right", m1, m2))
    fit = he.bradley_terry_intervals(ratings, resamples=100, seed=0)
    point = he.bradley_terry(ratings)
    assert all(lo <= point[m] == s <= hi for m, (s, lo, hi) in fit.items())
    assert fit["a"][1] > max(fit["b"][2], fit["c"][2]) and fit["b"][0] > fit["c"][0]


def test_bradley_terry_differences_come_from_the_same_resamples():
    import random

    rng, ratings = random.Random(4), []
    strength = {"a": 4.0, "b": 1.0, "c": 1.0}  # b and c equally strong
    for r in range(5):
        for i in range(60):
            m1, m2 = [("a", "b"), ("b", "c"), ("a", "c")][i % 3]
            won = rng.random() < strength[m1] / (strength[m1] + strength[m2])
            ratings.append(pair(f"r{r}", f"{m1}{i}", f"{m2}{i}", f"{m1}{i}", "left" if won else "right", m1, m2))
    diff = he.bradley_terry_differences(ratings, [("a", "b"), ("b", "c")], resamples=200, seed=0)
    point, fit = he.bradley_terry(ratings), he.bradley_terry_intervals(ratings, resamples=200, seed=0)
    assert all(d == point[a] - point[b] and lo <= d <= hi for (a, b), (d, lo, hi) in diff.items())
    assert diff["a", "b"][1] > 0  # a clearly stronger
    assert diff["b", "c"][1] < 0 < diff["b", "c"][2]  # equally strong: the interval of the difference holds 0
    draws = he._bradley_terry_draws(ratings, point, 200, 0)  # the resamples both functions use
    assert len(draws) == 200 and math.isclose(fit["b"][1], np.quantile([x["b"] for x in draws], 0.025))
    assert math.isclose(diff["b", "c"][1], np.quantile([x["b"] - x["c"] for x in draws], 0.025))
    with pytest.raises(ValueError, match="no pairwise rating"):
        he.bradley_terry_differences(ratings, [("a", "x")])


def test_side_bias_finds_a_leaning_rater_and_ignores_ties():
    fair = [pair("r", f"g{i}", f"v{i}", f"g{i}", "left" if i % 2 else "right") for i in range(100)]
    leaning = [pair("r", f"g{i}", f"v{i}", f"g{i}", "left" if i % 4 else "right") for i in range(100)]
    ties = [pair("r", f"g{i}", f"v{i}", f"g{i}", "tie") for i in range(50)]
    f, lean = he.side_bias(fair + ties), he.side_bias(leaning)
    assert (f["n"], f["left"], f["share"]) == (100, 50, 0.5) and f["low"] < 0.5 < f["high"] and f["p_value"] == 1.0
    assert lean["share"] == 0.75 and lean["low"] > 0.5 and lean["p_value"] < 1e-5
    with pytest.raises(ValueError, match="ties"):
        he.side_bias(ties)


def test_room_power_false_alarms_near_five_percent_and_power_grows_with_items():
    false_alarms = he.room_power(0.5, 10, 40, rooms=200, resamples=200, seed=1)
    assert false_alarms < 0.12
    small, large = (he.room_power(0.7, 10, m, rooms=100, resamples=100, seed=2) for m in (8, 40))
    assert small < large and large > 0.8
    wilson = he.room_power(0.5, 40, 4, rooms=100, seed=3, method="wilson")
    assert wilson > 0.2  # 160 ratings of 4 items, counted as independent: many false alarms
    with pytest.raises(ValueError, match="method"):
        he.room_power(0.6, 5, 5, method="t")
    with pytest.raises(ValueError, match="win_rate"):
        he.room_power(1.0, 5, 5)


@pytest.mark.parametrize(("rooms", "seeds"), [(60, range(8)), (300, range(1))], ids=["ci-rooms", "cpu-rooms"])
def test_more_items_beat_more_raters_for_the_same_ratings_over_seeds(rooms, seeds):
    """The pooled comparison of notebook 07, section 4.4 (its instructors' notes cite this test), over seeds."""

    def pooled(size, seed):  # as in notebook 07: the table's rooms (seed) and five times as many more (seed + 1)
        return (he.room_power(0.7, *size, rooms=rooms, resamples=100, seed=seed)
                + 5 * he.room_power(0.7, *size, rooms=5 * rooms, resamples=100, seed=seed + 1)) / 6

    for seed in seeds:
        assert pooled((5, 48), seed) > pooled((20, 12), seed), seed  # 240 ratings each: 48 items beat 20 raters
    if rooms == 60:  # on the table's 60 rooms alone, one seed ties them: why the notebook pools
        assert he.room_power(0.7, 5, 48, rooms=60, resamples=100, seed=7) == \
            he.room_power(0.7, 20, 12, rooms=60, resamples=100, seed=7)


def test_report_prints_and_returns_a_rooms_analysis(tmp_path, capsys):
    assert he.report(tmp_path) is None and "no pairwise ratings" in capsys.readouterr().out
    rng = np.random.default_rng(0)
    for rater in ("ana", "ben", "cy"):
        log = he.RatingsLog(tmp_path / f"{rater}.csv")
        for i in range(12):
            for a, b in (("gan", "vae"), ("gan", "real"), ("vae", "real")):
                left = f"{a}{i}" if rng.random() < 0.5 else f"{b}{i}"
                better = f"{b}{i}" if b == "real" or rng.random() < 0.3 else f"{a}{i}"  # real wins; gan mostly
                log.append(pair(rater, f"{a}{i}", f"{b}{i}", left, "left" if better == left else "right", a, b))
    out = he.report(tmp_path, resamples=20, seed=3)
    printed = capsys.readouterr().out
    ratings = he.load_ratings(tmp_path)
    assert out["ratings"] == ratings and out["rates"] == he.win_rates(ratings)
    assert out["two_way"]["gan"] == he.two_way_bootstrap(ratings, "gan", resamples=200, seed=3)
    assert set(out["bt"]) == {"gan", "vae", "real"} and out["agreement"]["method"] == "Fleiss"
    assert printed.startswith("108 ratings from 3 rater(s)\n")
    assert "Bradley-Terry strengths" in printed and "side: left chosen" in printed
    lines = printed.splitlines()
    assert [line.split()[0] for line in lines[1:4]] == ["real", "gan", "vae"]  # win rates, best first
    (tmp_path / "ben.csv").unlink(), (tmp_path / "cy.csv").unlink()
    lone = he.report(tmp_path, resamples=20)
    assert lone["agreement"] is None and "agreement:" in capsys.readouterr().out  # one rater: why there is none


def test_raters_who_differ_more_than_items_reverse_the_advice():
    # notebook 07, 4.4: "raters who differed more would favour more raters instead" (300 rooms; the gap is ~15 points)
    power = {sds: [he.room_power(0.7, r, m, rooms=300, resamples=100, seed=1, item_sd=sds[0], rater_sd=sds[1])
                   for r, m in ((5, 48), (20, 12))] for sds in ((1.0, 0.5), (0.5, 1.0))}
    assert power[1.0, 0.5][0] > power[1.0, 0.5][1] + 0.05  # items differ more: 5 raters x 48 items ahead
    assert power[0.5, 1.0][1] > power[0.5, 1.0][0] + 0.05  # raters differ more: 20 raters x 12 items ahead
