import numpy as np
import pytest
import trueskill

from ranker.ratings import PRESETS, RatingConfig, Ratings


def test_image_ranker_golden_first_update():
    r = Ratings.replay(2, [(0, 1, False)], RatingConfig.preset("image_ranker"))
    assert r.pool.mu[0] == pytest.approx(4.394, abs=5e-4)
    assert r.pool.mu[1] == pytest.approx(-4.394, abs=5e-4)
    assert r.pool.sigma[0] == pytest.approx(7.169, abs=5e-4)
    assert r.pool.sigma[1] == pytest.approx(7.169, abs=5e-4)


def test_standard_preset_matches_trueskill_defaults():
    env = trueskill.TrueSkill()
    cfg = RatingConfig.preset("trueskill")
    assert (cfg.mu, cfg.sigma, cfg.beta, cfg.tau, cfg.draw_probability) == pytest.approx(
        (env.mu, env.sigma, env.beta, env.tau, env.draw_probability)
    )


def test_tie_is_a_real_outcome():
    r = Ratings.replay(2, [(0, 1, True)], RatingConfig.preset("image_ranker"))
    assert r.pool.mu[0] == pytest.approx(r.pool.mu[1])
    assert r.pool.sigma[0] < 8.33
    assert r.ties == [1, 1] and r.wins == [0, 0]


def _random_votes(n: int, k: int, seed: int) -> list[tuple[int, int, bool]]:
    rng = np.random.default_rng(seed)
    votes = []
    for _ in range(k):
        a, b = rng.choice(n, 2, replace=False)
        votes.append((int(a), int(b), bool(rng.random() < 0.1)))
    return votes


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_incremental_equals_replay_and_undo_is_exact(preset):
    cfg = RatingConfig.preset(preset)
    votes = _random_votes(12, 60, seed=1)
    inc = Ratings(12, cfg)
    snapshots = []
    for v in votes:
        snapshots.append((inc.pool.mu.copy(), inc.pool.sigma.copy()))
        inc.apply(*v)
    full = Ratings.replay(12, votes, cfg)
    assert np.array_equal(inc.pool.mu, full.pool.mu)
    assert np.array_equal(inc.pool.sigma, full.pool.sigma)
    for mu, sigma in reversed(snapshots[-10:]):
        inc.undo_last()
        assert np.array_equal(inc.pool.mu, mu) and np.array_equal(inc.pool.sigma, sigma)
    assert inc.pool.n_votes == 50 and int(inc.pool.counts.sum()) == 100


def test_settings_overrides_and_validation():
    cfg = RatingConfig.from_settings({"rating_preset": "trueskill", "beta": 2.0})
    assert cfg.beta == 2.0 and cfg.mu == 25.0
    with pytest.raises(ValueError, match="unknown rating preset"):
        RatingConfig.preset("elo")
    with pytest.raises(ValueError, match="draw_probability"):
        RatingConfig.from_settings({"draw_probability": 1.5})


def test_self_comparison_is_refused():
    with pytest.raises(ValueError, match="itself"):
        Ratings(3, RatingConfig()).apply(1, 1)
