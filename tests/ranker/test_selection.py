"""Pair selection: the interface contract, Image Ranker fidelity, active's two regimes."""

from __future__ import annotations

import itertools
import json
import math
import sys
import threading

import numpy as np
import pytest
from scipy.special import ndtr
from scipy.stats import kendalltau

from ranker.pool import Pool
from ranker.selection import STRATEGIES, make_selector, ranking_confidence
from ranker.selection.imageranker import _front_by_levels, smart_shuffle_front
from ranker.tsmath import draw_margin, rate_one

PRESET = dict(prior_mu=0.0, prior_sigma=8.33)
EPS = draw_margin(0.10, 25 / 6)


def vote(pool: Pool, winner: int, loser: int, draw: bool = False) -> None:
    mu, sd = pool.mu, pool.sigma
    r = 0.5 if draw else 1.0
    mu[winner], sd[winner], mu[loser], sd[loser] = rate_one(
        mu[winner], sd[winner], mu[loser], sd[loser], r, 25 / 6, 25 / 300, EPS
    )
    pool.record(winner, loser, draw)


def drive(name, n=40, votes=120, noise=0.0, seed=0, reset_at=(), pool=None, **params):
    """Simulate labelers on hidden qualities; returns (pairs, pool, selector, truth)."""
    rng = np.random.default_rng(seed)
    q = np.random.default_rng(1234).normal(size=n)
    pool = pool or Pool.empty(n, **PRESET)
    sel = make_selector(name, **params)
    pairs, last = [], set()
    for v in range(votes):
        if v in reset_at:
            sel.reset()
        pair = sel.next_pair(pool, rng, avoid=last)
        if pair is None:
            break
        pairs.append(pair)
        a, b = pair
        p = float(q[a] > q[b]) if noise == 0 else ndtr((q[a] - q[b]) / noise)
        w, lo = (a, b) if rng.random() < p else (b, a)
        vote(pool, w, lo)
        sel.observe(pool, w, lo, 1.0)
        last = {pair}
    return pairs, pool, sel, q


def test_strategy_names_and_unknown_name() -> None:
    for name in ("active", "smart_shuffle", "auto_shuffle", "elimination", "random", "budget"):
        assert name in STRATEGIES
        assert make_selector(name).name == name
    with pytest.raises(ValueError, match="smart_shuffle"):
        make_selector("quantum")


@pytest.mark.parametrize("name", STRATEGIES)
def test_pairs_are_distinct_active_and_not_immediate_repeats(name: str) -> None:
    pool = Pool.empty(30, **PRESET)
    pool.active[[3, 7, 11]] = False
    pairs, *_ = drive(name, n=30, votes=80, noise=1.0, pool=pool)
    assert pairs
    for k, (a, b) in enumerate(pairs):
        assert a < b and pool.active[a] and pool.active[b]
        if k:
            assert (a, b) != pairs[k - 1]


@pytest.mark.parametrize("name", STRATEGIES)
def test_replay_after_reset_gives_the_same_pairs(name: str) -> None:
    plain, *_ = drive(name, noise=1.0, seed=5)
    interrupted, *_ = drive(name, noise=1.0, seed=5, reset_at=(1, 37, 38, 90))
    assert plain == interrupted


@pytest.mark.parametrize("name", STRATEGIES)
def test_avoid_is_respected_while_alternatives_exist(name: str) -> None:
    _, pool, sel, _ = drive(name, n=12, votes=3, noise=1.0)
    rng = np.random.default_rng(0)
    avoid = set()
    for _ in range(5):  # five labelers at once: five different pairs
        pair = sel.next_pair(pool, rng, avoid=avoid)
        if pair is None:
            break
        assert pair not in avoid
        avoid.add(pair)


def test_two_items_return_the_reserved_pair_rather_than_nothing() -> None:
    pool = Pool.empty(2, **PRESET)
    assert make_selector("random").next_pair(pool, np.random.default_rng(0), {(0, 1)}) == (0, 1)


def test_elimination_knocks_out_losers_and_finishes() -> None:
    pairs, pool, sel, _ = drive("elimination", n=10, votes=50)
    assert len(pairs) == 9  # N - 1 decided votes leave one image
    assert sel.next_pair(pool, np.random.default_rng(0)) is None
    assert len(sel.remaining(pool)) == 1
    assert pool.active.all()  # derived from history, the pool is untouched
    # undo of the last vote brings its loser back
    loser = pool.second[-1]
    for h in (pool.first, pool.second, pool.result):
        h.pop()
    sel.reset()
    assert loser in sel.remaining(pool)


def test_elimination_ties_exclude_nothing() -> None:
    pool = Pool.empty(4, **PRESET)
    sel = make_selector("elimination")
    vote(pool, 0, 1, draw=True)
    assert len(sel.remaining(pool)) == 4


def test_elimination_ends_when_its_last_survivors_tie() -> None:
    pool = Pool.empty(3, **PRESET)
    sel, rng = make_selector("elimination"), np.random.default_rng(0)
    vote(pool, 0, 1)  # 1 is out
    vote(pool, 2, 0, draw=True)  # the last two call it equal
    assert sorted(sel.remaining(pool)) == [0, 2]
    assert sel.next_pair(pool, rng) is None  # they share the win; not asked again
    vote(pool, 1, 2, draw=True)  # a tie with a loser changes nothing
    assert sel.next_pair(pool, rng) is None


def test_budget_stops_and_validates() -> None:
    pairs, *_ = drive("budget", n=20, votes=100, budget=25)
    assert len(pairs) == 25
    pairs, *_ = drive("active", n=20, votes=100, budget=7)
    assert len(pairs) == 7
    with pytest.raises(ValueError, match="random_share"):
        make_selector("budget", random_share=1.5)


def test_smart_shuffle_front_equals_brute_force_order() -> None:
    rng = np.random.default_rng(4)
    for _ in range(60):
        n = int(rng.integers(3, 50))
        mu, counts = np.round(rng.normal(0, 3, n), 1), rng.integers(0, 4, n)
        skip = {tuple(sorted(rng.choice(n, 2, replace=False).tolist())) for _ in range(4)}
        got = smart_shuffle_front(mu, counts, np.arange(n), 3, rng, skip)
        keys = sorted(
            abs(mu[a] - mu[b]) + 0.8 * (counts[a] + counts[b])
            for a, b in itertools.combinations(range(n), 2)
            if (a, b) not in skip
        )[:3]
        assert [abs(mu[a] - mu[b]) + 0.8 * (counts[a] + counts[b]) for a, b in got] == (
            pytest.approx(keys)
        )


def test_the_count_level_search_equals_brute_force_on_large_sets() -> None:
    # the path taken when mixed counts would widen the mu window past O(N) keys
    rng = np.random.default_rng(5)
    for trial in range(6):
        n = int(rng.integers(300, 1500))
        mu = np.round(rng.normal(25, 4, n), 2)
        counts = rng.integers(trial % 3, 8, n)
        order = rng.permutation(n)
        order = order[np.argsort(mu[order], kind="stable")]
        near = [tuple(sorted((int(order[i]), int(order[i + 1])))) for i in range(0, n - 1, 2)]
        skip = set(near)  # every other mu-neighbour pair already compared
        m = int(rng.integers(1, 9))
        got = _front_by_levels(mu, counts, order, m, skip)
        a, b = np.triu_indices(n, 1)
        keys = np.abs(mu[a] - mu[b]) + 0.8 * (counts[a] + counts[b])
        allowed = np.array([(int(x), int(y)) not in skip for x, y in zip(a, b, strict=True)])
        want = np.sort(keys[allowed])[:m]
        assert [k for k, _ in got] == pytest.approx(want.tolist())
        for k, (x, y) in got:
            assert (x, y) not in skip and x < y
            assert abs(mu[x] - mu[y]) + 0.8 * (counts[x] + counts[y]) == pytest.approx(k)
        assert len({p for _, p in got}) == m


def test_smart_shuffle_never_repeats_a_compared_pair() -> None:
    pairs, *_ = drive("smart_shuffle", n=12, votes=60, noise=1.0)
    assert len(set(pairs)) == len(pairs)


def test_active_sorts_consistent_labelers_exactly() -> None:
    n = 64  # log2(64!) / 64 = 4.8 votes per image is the information bound
    _, pool, sel, q = drive("active", n=n, votes=8 * n)
    assert sel.sorting
    assert kendalltau(sel.ranking(pool), q)[0] == pytest.approx(1.0)
    # the warm-up shows every image early: all seen within the first N votes
    _, pool, _, _ = drive("active", n=n, votes=n)
    assert (pool.counts > 0).all()


def test_active_notices_noisy_labelers_and_switches_to_refit() -> None:
    _, pool, sel, q = drive("active", n=60, votes=300, noise=1.03)  # an 80% labeler
    assert not sel.sorting
    assert kendalltau(sel.ranking(pool), q)[0] > 0.4


def test_active_ranks_noisy_votes_online_then_by_refit() -> None:
    from ranker.selection import refit

    n = 60
    _, pool, sel, _ = drive("active", n=n, votes=n, noise=1.03, mode="refit", sparse_rank="mu")
    assert np.array_equal(sel.ranking(pool), pool.mu)  # sparse graph: online ratings
    _, pool, sel, _ = drive("active", n=n, votes=n, noise=1.03, mode="refit")
    assert np.allclose(sel.ranking(pool), refit(pool)[0])  # the default: the refit
    _, pool, sel, _ = drive("active", n=n, votes=2 * n, noise=1.03, mode="refit")
    assert np.allclose(sel.ranking(pool), refit(pool)[0])


def test_active_detects_noise_within_about_one_vote_per_image() -> None:
    # the detector itself, sorting from the warm-up on (the former default)
    _, _, sel, _ = drive(
        "active", n=100, votes=100, noise=1.03, sort_from=0.0, check_every=2, min_checks=40
    )
    assert not sel.sorting
    # the default sorts from 1 vote per image on (Image Ranker's auto-shuffle pairs
    # before): 80% labelers are caught within one vote per image of the sort's start
    # (measured: 118-184 votes at N = 100, median 142; checks every 4th vote)
    caught = []
    for seed in range(10):
        _, _, sel, _ = drive("active", n=100, votes=200, noise=1.03, seed=seed)
        caught.append(sel._noisy_at)
    assert all(at is not None for at in caught)
    assert np.median(caught) <= 150


def test_active_spot_checks_start_right_after_the_warm_up() -> None:
    n = 100
    _, _, sel, _ = drive(
        "active", n=n, votes=int(0.8 * n), sort_from=0.0, check_every=2, min_checks=40
    )  # consistent: confirmed
    assert sel.sorting and sel._sort.checked > 0 and sel._sort.contradictions == 0
    caught = []
    for seed in range(10):  # 80% labelers: most are caught before 0.8 votes per image
        # (without the misclick re-ask, whose cost the next test bounds)
        _, _, sel, _ = drive(
            "active",
            n=n,
            votes=int(0.8 * n),
            noise=1.03,
            seed=seed,
            misclicks=0,
            sort_from=0.0,
            check_every=2,
            min_checks=40,
        )
        caught.append(sel._noisy_at)
    assert sum(at is not None for at in caught) >= 8
    assert np.median([at or n for at in caught]) <= 0.7 * n


def test_one_misclick_is_re_asked_and_forgiven_noise_still_caught() -> None:
    import copy

    n = 100
    q = np.random.default_rng(1234).normal(size=n)
    rng = np.random.default_rng(0)
    # the former schedule (sorting from the warm-up, a check every 2nd vote): the
    # misclick lands in a sort that has checks to confirm it
    old = dict(sort_from=0.0, check_every=2, min_checks=40)
    pool, sel, last = Pool.empty(n, **PRESET), make_selector("active", **old), set()
    misclick = reasked = None
    for v in range(int(1.5 * n)):
        pair = sel.next_pair(pool, rng, avoid=last)
        a, b = pair
        w, lo = (a, b) if q[a] > q[b] else (b, a)
        if misclick is None and v >= n:  # flip the first answer the sort can check
            trial_pool, trial = copy.deepcopy(pool), copy.deepcopy(sel)
            vote(trial_pool, lo, w)
            trial.observe(trial_pool, lo, w, 1.0)
            if trial._reask == (lo, w):
                misclick, (w, lo) = (lo, w), (lo, w)
        elif misclick and pair == tuple(sorted(misclick)):
            reasked = v
        vote(pool, w, lo)
        sel.observe(pool, w, lo, 1.0)
        last = {pair}
    assert misclick is not None and reasked is not None  # contradicted, then asked again
    assert sel.sorting and sel._forgiven == 1  # confirmed: still sorting
    assert sel._sort.contradictions == 0
    caught = []
    for seed in range(10):  # 80% labelers still leave sorting, a few votes later
        _, _, sel, _ = drive(
            "active",
            n=n,
            votes=int(1.1 * n),
            noise=1.03,
            seed=seed,
            sort_from=0.0,
            check_every=2,
            min_checks=40,
        )
        caught.append(sel._noisy_at)
    assert sum(at is not None for at in caught) >= 9
    assert np.median([at or 2 * n for at in caught]) <= 0.8 * n


@pytest.mark.parametrize("noise", [0.0, 1.03])
@pytest.mark.parametrize("n", [2, 3, 5, 8, 27])
def test_active_small_projects_never_fail(n: int, noise: float) -> None:
    # empty buckets (nothing below or above a pivot) once broke the spot checks
    for seed in range(6):
        pairs, pool, _, _ = drive("active", n=n, votes=6 * n, noise=noise, seed=seed)
        assert len(pairs) == pool.n_votes == 6 * n


def test_active_orders_bucket_members_by_the_refit() -> None:
    n = 100
    taus = {}
    for within in ("refit", "mu"):
        _, pool, sel, q = drive("active", n=n, votes=2 * n, sort_within=within)
        assert sel.sorting
        taus[within] = kendalltau(sel.ranking(pool), q)[0]
    assert taus["refit"] > taus["mu"]
    with pytest.raises(ValueError, match="sort_within"):
        make_selector("active", sort_within="nope")


def test_active_noisy_and_sparse_pairs_like_smart_shuffle() -> None:
    from ranker.selection.imageranker import SmartShuffleSelector

    n = 60
    _, pool, sel, _ = drive("active", n=n, votes=n, noise=1.03, sort_from=0.0)
    assert not sel.sorting  # noisy, and 1 vote per image is under online_until
    got = sel.next_pair(pool, np.random.default_rng(5))
    assert got == SmartShuffleSelector().next_pair(pool, np.random.default_rng(5))
    with pytest.raises(ValueError, match="sparse_pairs"):
        make_selector("active", sparse_pairs="nope")


def test_active_scales_without_pair_lists() -> None:
    pool = Pool.empty(20_000, **PRESET)
    rng = np.random.default_rng(0)
    for a, b in rng.integers(0, 20_000, size=(40_000, 2)):
        if a != b:
            vote(pool, int(a), int(b))
    sel = make_selector("refit_eig")
    a, b = sel.next_pair(pool, rng)
    assert a != b and pool.active[a] and pool.active[b]


def test_pre_ranked_pool_starts_from_its_seed() -> None:
    from ranker.selection import prior_from_scores

    pool = Pool.empty(5, **PRESET)
    mu, sigma = prior_from_scores(np.arange(5.0), 0.75)
    pool.seed(mu, sigma)
    start_mu, _ = pool.start_ratings()
    np.testing.assert_allclose(start_mu, mu)
    vote(pool, 0, 4)
    with pytest.raises(ValueError, match="before the first vote"):
        pool.seed(mu, sigma)


def test_ranking_confidence_grows_with_votes() -> None:
    pool = Pool.empty(30, **PRESET)
    assert ranking_confidence(pool) == pytest.approx(0.5)
    _, pool, _, _ = drive("active", n=30, votes=150, pool=pool)
    conf = ranking_confidence(pool)
    assert 0.5 < conf <= 1.0


@pytest.mark.slow
def test_quick_benchmark_runs_and_writes_json(tmp_path) -> None:
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "bench" / "rank_bench.py"
    spec = importlib.util.spec_from_file_location("rank_bench", path)
    bench = importlib.util.module_from_spec(spec)
    sys.modules["rank_bench"] = bench  # dataclasses resolve annotations through it
    spec.loader.exec_module(bench)
    out = tmp_path / "bench.json"
    result = bench.main(["--quick", "--jobs", "1", "--json", str(out)])
    data = json.loads(out.read_text())
    assert data["summary"] and data["timings"]
    assert math.isfinite(result["summary"]["active|30|80%"]["own_tau"][-1])


def test_full_posterior_reference_design_runs(capsys) -> None:
    import importlib.util
    from pathlib import Path

    bench_dir = Path(__file__).resolve().parents[2] / "bench"
    sys.path.insert(0, str(bench_dir))
    try:
        spec = importlib.util.spec_from_file_location(
            "rank_lookahead", bench_dir / "rank_lookahead.py"
        )
        lookahead = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(lookahead)
        argv = ["--n", "12", "--seeds", "1", "--max-budget", "1", "--jobs", "1"]
        lookahead.main(argv)
    finally:
        sys.path.remove(str(bench_dir))
    printed = capsys.readouterr().out
    assert "full_posterior:objective='risk'" in printed and "auto_shuffle" in printed
    # the full posterior is a proper covariance, and the risk objective picks a pair
    pool = Pool.empty(6, **PRESET)
    for w, lo in [(0, 1), (1, 2), (3, 4), (2, 5)]:
        vote(pool, w, lo)
    design = lookahead.FullPosterior("risk")
    s, cov = design.fit(pool)
    assert np.allclose(cov, cov.T) and (np.linalg.eigvalsh(cov) > 0).all()
    assert design.next_pair(pool, np.random.default_rng(0)) is not None


@pytest.mark.parametrize("name", STRATEGIES)
def test_ties_never_stall_a_strategy(name: str) -> None:
    """A labeler who calls near-equal images a tie (17% of random pairs here, the Tie
    button on near-duplicates) is answered, not asked the same pair again and again."""
    from collections import Counter

    n, votes = 60, 1000
    q = np.random.default_rng(7).normal(size=n)
    rng = np.random.default_rng(3)
    pool, sel, last = Pool.empty(n, **PRESET), make_selector(name), set()
    served: Counter = Counter()
    for _ in range(votes):
        pair = sel.next_pair(pool, rng, avoid=last)
        if pair is None:
            break
        served[pair] += 1
        a, b = pair
        tie = abs(q[a] - q[b]) < 0.3
        w, lo = (a, b) if q[a] > q[b] else (b, a)
        vote(pool, w, lo, draw=tie)
        sel.observe(pool, w, lo, 0.5 if tie else 1.0)
        last = {pair}
    # random pairs repeat up to ~5 times here, refit EIG re-asks its closest pairs a few
    assert max(served.values()) <= 8, served.most_common(3)
    ranking = sel.ranking(pool) if hasattr(sel, "ranking") else pool.mu
    if name == "elimination":  # done early: its last survivors tie or one is left
        assert pool.n_votes < votes and len(sel.remaining(pool)) <= 3
        assert q[sel.remaining(pool)].max() >= np.sort(q)[-3]  # a true top image won
    else:
        assert kendalltau(ranking, q)[0] > 0.75
    if name == "active":  # the sort went on through the ties and finished
        assert sel.sorting and sel._sort.finished and sel._sort.ties > 0


def test_background_refit_serves_the_last_finished_one(monkeypatch) -> None:
    from ranker.selection import refit_model
    from ranker.selection.refit_model import RefitModel

    monkeypatch.setattr(refit_model, "INLINE_SIZE", 0)  # every refit in the thread
    # the thread's fit waits for the test's go: on a loaded machine it could otherwise
    # finish before the "nothing to serve yet" assertions run
    go, fit = threading.Event(), refit_model.bt_fit

    def gated_fit(*args, **kwargs):
        if threading.current_thread() is not threading.main_thread():
            go.wait(10)
        return fit(*args, **kwargs)

    monkeypatch.setattr(refit_model, "bt_fit", gated_fit)
    _, pool, _, _ = drive("random", n=50, votes=120)
    inline, background = RefitModel(40), RefitModel(40, background=True)
    inline.update(pool)
    background.update(pool)  # starts the refit of the first 120 votes; nothing to serve
    assert not background.ready and inline.ready
    sel = make_selector("active", background=True, mode="refit")
    sel._model = background
    assert sel.refit_scores(pool) is None  # no wait: the caller falls back
    go.set()
    background.wait(10)
    background.update(pool)
    assert background.ready and background.at == inline.at == 120
    assert np.allclose(background.scores, inline.scores)
    vote(pool, 0, 1)  # a later vote moves the served scores at once (online update)
    background.update(pool)
    assert background.scores[0] > inline.scores[0] and background.at == 120


def test_a_pivot_that_tied_its_equal_class_is_placed_by_the_within_scores() -> None:
    """A tie names no order: the pivot goes where the refit puts it among its equal
    class, not above every member (the sorted order inside the class is kept)."""
    from ranker.selection.sortstate import QuickSortState, _tiebreak

    pool = Pool.empty(3, **PRESET)
    sort = QuickSortState(pool, np.ones(3, dtype=bool))
    p = min(range(3), key=_tiebreak)  # a bucket of 3 takes its hash-first item as pivot
    x, y = (i for i in range(3) if i != p)
    for a in (x, y):
        sort.add(a, p, 0.5)
    sort.add(x, y, 1.0)  # the equal class sorts itself: x above y
    assert sort.finished and sort.ties == 2
    within = np.zeros(3)

    def order(scores: np.ndarray) -> list[int]:
        return [int(i) for i in np.argsort(-scores, kind="stable")]

    within[[y, p, x]] = [0.0, 1.0, 2.0]  # the refit puts p between y and x
    assert order(sort.order_scores(within)) == [x, p, y]
    within[[y, p, x]] = [1.0, 0.0, 2.0]  # ... or below both
    assert order(sort.order_scores(within)) == [x, y, p]
    sort.place_tied_pivots = False  # before: the pivot above its whole equal class
    assert order(sort.order_scores(within)) == [p, x, y]


@pytest.mark.parametrize("noise", [0.5, 1.03])  # about 90% and 80% labelers
def test_spot_checks_re_ask_the_least_supported_vote_and_catch_noise_soon(noise: float) -> None:
    """A noisy labeler flips a near-equal pair about every other time: re-asking the
    voted pair the other votes support least catches every one right after the sort
    starts (at 1 vote per image); checks of far known orders alone miss most."""
    caught = {}
    for repeats in (True, False):
        caught[repeats] = [
            drive("active", n=100, votes=150, noise=noise, seed=s, repeat_checks=repeats)[
                2
            ]._noisy_at
            for s in range(10)
        ]
    assert all(at is not None and at <= 140 for at in caught[True])
    assert np.median(caught[True]) <= 120
    assert sum(at is not None for at in caught[False]) <= 6

    from ranker.selection.sortstate import QuickSortState

    pool = Pool.empty(6, **PRESET)
    sort = QuickSortState(pool, np.ones(6, dtype=bool))
    for w, lo in ((0, 1), (2, 3), (4, 5)):
        sort.add(w, lo, 1.0)
    sort.mu[:] = [5.0, 0.0, 1.0, 0.9, 3.0, -3.0]  # the others barely support 2 over 3
    rng = np.random.default_rng(0)
    assert sort.check_pair(rng) == (2, 3)
    assert sort.check_pair(rng, avoid={(2, 3)}) == (0, 1)  # the next least supported
    sort.add(3, 2, 1.0)  # asked again, answered the other way: a contradiction
    assert sort.contradictions == 1 and sort.checked == 1  # counted once, not twice
    assert sort.check_pair(rng, avoid={(0, 1)}) == (4, 5)  # a pair is re-asked once


def test_pivot_questions_come_least_certain_first() -> None:
    """Items the ratings place far from the pivot wait: the one nearest it is asked."""
    from ranker.selection.sortstate import QuickSortState

    n = 9
    pool = Pool.empty(n, **PRESET)
    sort = QuickSortState(pool, np.ones(n, dtype=bool), max_candidates=1)
    (s,) = sort.pivot  # one candidate: the pivot is chosen without a vote
    p = sort.pivot[s]
    sort.mu[:] = np.arange(n) * 3.0
    sort.mu[p] = 10.0
    near = min((i for i in range(n) if i != p), key=lambda i: abs(sort.mu[i] - 10.0))
    rng = np.random.default_rng(0)
    assert sort.next_pair(rng, np.ones(n, dtype=bool)) == tuple(sorted((p, near)))
    sort.least_certain_first = False  # random order: some seed asks another item first
    asked = {sort.next_pair(np.random.default_rng(k), np.ones(n, dtype=bool)) for k in range(8)}
    assert len(asked) > 1


def test_the_smallest_margins_come_in_the_full_sort_order() -> None:
    from ranker.selection.sortstate import _smallest

    rng = np.random.default_rng(9)
    for _ in range(100):
        values = np.round(rng.normal(size=int(rng.integers(1, 3000))), 1)  # many ties
        k = int(rng.integers(1, 80))
        np.testing.assert_array_equal(_smallest(values, k), np.argsort(values, kind="stable")[:k])
