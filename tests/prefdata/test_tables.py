"""Preference tables: labels, labelers, the split by image, the dataset card."""

from __future__ import annotations

import pytest

from common.contracts import UNVOTED_SPLIT
from prefdata.card import dataset_card
from prefdata.split import (
    MAX_AUTO_FRACTION,
    USABLE_TEST_PAIRS,
    choose_split,
    choose_test_images,
    pair_split,
)
from prefdata.tables import build_tables, labeler_mapper, labels_outcome, outcome_labels
from ranker.errors import StudioError
from tests.prefdata.fixtures import voted_project


@pytest.mark.parametrize(
    ("outcome", "labels"), [("left", (1.0, 0.0)), ("right", (0.0, 1.0)), ("tie", (0.5, 0.5))]
)
def test_outcome_labels_round_trip(outcome, labels):
    assert outcome_labels(outcome) == labels
    assert labels_outcome(*labels) == outcome


def test_unknown_outcome_is_refused():
    with pytest.raises(StudioError, match="outcome must be one of"):
        outcome_labels("both")


def test_labeler_policies():
    assert labeler_mapper("publish", "p")("ann") == "ann"
    assert labeler_mapper("drop", "p")("ann") is None
    hashed = labeler_mapper("hash", "p")
    assert hashed("ann") == hashed("ann") != hashed("bob")
    assert "ann" not in hashed("ann") and hashed("ann").startswith("labeler-")
    assert labeler_mapper("hash", "other")("ann") != hashed("ann")  # salted per project
    with pytest.raises(StudioError, match="labelers must be one of"):
        labeler_mapper("publicise", "p")


def test_test_images_are_seeded_and_sized():
    pairs = [(f"i{a}", f"i{b}") for a in range(20) for b in range(a + 1, 20) if (a + b) % 3]
    first = choose_test_images(pairs, 0.2, seed=3)
    assert first == choose_test_images(list(reversed(pairs)), 0.2, seed=3)  # order-free
    assert len(first) == 4
    assert choose_test_images(pairs, 0.2, seed=4) != first
    assert choose_test_images(pairs, 0.0, seed=3) == frozenset()
    with pytest.raises(StudioError, match="test fraction"):
        choose_test_images(pairs, 1.0, seed=0)


def test_best_of_draws_keeps_more_test_pairs_than_one_draw():
    pairs = [(f"i{a}", f"i{(a * 7 + k) % 50}") for a in range(50) for k in (1, 2, 3)]

    def kept(test):
        return sum(pair_split(a, b, test) == "test" for a, b in pairs)

    assert kept(choose_test_images(pairs, 0.2, 0, tries=32)) >= kept(
        choose_test_images(pairs, 0.2, 0, tries=1)
    )


def test_small_project_split_is_raised_to_keep_a_usable_test_set(tmp_path):
    # 60 votes over 27 images, as after ranking the demo: 10% keeps almost no test pairs
    _, project = voted_project(tmp_path, n_images=27, n_votes=60)
    asked = build_tables(project, test_fraction=0.1, seed=0, min_test_pairs=0).report
    assert asked.test_pairs < USABLE_TEST_PAIRS
    r = build_tables(project, test_fraction=0.1, seed=0).report
    assert r.raised and r.requested_fraction == 0.1 and r.requested_test_pairs == asked.test_pairs
    assert 0.1 < r.test_fraction <= MAX_AUTO_FRACTION
    assert r.test_pairs >= USABLE_TEST_PAIRS and r.usable_test
    assert r.train_pairs + r.test_pairs + r.mixed_pairs == 60
    notes = " ".join(r.split_notes())
    assert f"The split costs {r.mixed_pairs} of 60 pairs" in notes
    assert f"raised from 10% to {r.test_fraction:.0%}" in notes and "No usable" not in notes
    smaller = choose_split([(f"i{k}", f"i{k + 1}") for k in range(15)], 0.1, seed=0)
    assert smaller.fraction == 0.1  # 15 pairs never keep 10: not raised


def test_tied_test_pairs_do_not_make_a_usable_test_set():
    pairs = [("a", "b"), ("b", "c"), ("a", "c")] * 10  # three images compared again and again
    assert choose_split(pairs, 0.4, seed=0).fraction == 0.5  # 10 test pairs, if ties counted
    ties = choose_split(pairs, 0.4, seed=0, decisive=[False] * len(pairs))
    assert ties.fraction == 0.4 and ties.requested_test_pairs == 0


def test_too_few_votes_say_plainly_there_is_no_test_set(tmp_path):
    _, project = voted_project(tmp_path, n_images=16, n_votes=12)
    r = build_tables(project, test_fraction=0.1, seed=0).report
    assert not r.raised and r.test_fraction == 0.1 and not r.usable_test
    assert any(note.startswith("No usable test set") for note in r.split_notes())
    none = build_tables(project, test_fraction=0.0).report
    assert none.split_notes() == [
        "No test split (test share 0): nothing will measure a model on it."
    ]


def test_a_large_enough_test_set_keeps_the_requested_share(tmp_path):
    _, project = voted_project(tmp_path, n_images=10, n_votes=200)
    r = build_tables(project, test_fraction=0.3, seed=0).report
    assert r.test_pairs >= USABLE_TEST_PAIRS
    assert not r.raised and r.requested_fraction is None and r.test_fraction == 0.3


def test_pair_split():
    test = frozenset({"a", "b"})
    assert pair_split("a", "b", test) == "test"
    assert pair_split("c", "d", test) == "train"
    assert pair_split("a", "c", test) is None


def test_tables_split_disjoint_by_image_and_counted(tmp_path):
    _, project = voted_project(tmp_path, n_images=20, n_votes=120)
    tables = build_tables(project, test_fraction=0.25, seed=1, min_test_pairs=0)
    r = tables.report
    train_uids = {u for p in tables.pairs["train"] for u in (p["image_0_uid"], p["image_1_uid"])}
    test_uids = {u for p in tables.pairs["test"] for u in (p["image_0_uid"], p["image_1_uid"])}
    assert train_uids and test_uids and not train_uids & test_uids
    assert r.train_pairs + r.test_pairs + r.mixed_pairs == 120 == len(tables.votes)
    assert r.test_images == 5 and r.train_images == 15
    splits = {row["uid"]: row["split"] for row in tables.images}
    assert {u for u, s in splits.items() if s == "test"} >= test_uids
    assert r.ties == sum(p["label_0"] == 0.5 for s in ("train", "test") for p in tables.pairs[s])
    assert build_tables(project, 0.25, seed=1, min_test_pairs=0).pairs == tables.pairs  # seeded


def test_tables_rows_follow_the_votes(tmp_path):
    _, project = voted_project(tmp_path)
    tables = build_tables(project, test_fraction=0.0)
    assert tables.pairs["test"] == [] and tables.report.mixed_pairs == 0
    for vote, row in zip(project.votes(), tables.pairs["train"], strict=True):
        assert (row["image_0_uid"], row["image_1_uid"]) == (vote.left_uid, vote.right_uid)
        assert row["label_0"] + row["label_1"] == 1.0
        expected_best = {"left": vote.left_uid, "right": vote.right_uid, "tie": None}
        assert row["best_image_uid"] == expected_best[vote.outcome]
        assert (row["labeler"], row["created_at"]) == (vote.labeler, vote.created_at)
        assert row["instruction"] == "Which is sharper?" and row["project"] == "demo"


def test_undone_votes_and_unvoted_images_are_handled(tmp_path):
    _, project = voted_project(tmp_path, n_votes=10)
    project.add_files([])  # nothing
    uids = [img.uid for img in project.images]
    project.record_votes([(None, uids[0], uids[1], "left", "zed", 2e9, None, "app")])
    project.undo("zed")
    tables = build_tables(project, test_fraction=0.0, labelers="drop")
    assert len(tables.votes) == 10
    assert all(row["labeler"] is None for row in tables.votes) and tables.labelers == []
    voted = {u for v in project.votes() for u in (v.left_uid, v.right_uid)}
    unvoted = [row for row in tables.images if row["uid"] not in voted]
    assert all(row["split"] == UNVOTED_SPLIT for row in unvoted)
    assert tables.report.unvoted_images == len(unvoted)


def test_no_votes_is_a_clear_error(tmp_path):
    studio, _ = voted_project(tmp_path, n_votes=1)
    empty = studio.create_project("empty")
    with pytest.raises(StudioError, match="no votes yet"):
        build_tables(empty)


def test_card_says_what_and_how(tmp_path):
    _, project = voted_project(tmp_path, n_images=20, n_votes=80)
    tables = build_tables(project, 0.2, seed=0, labelers="hash")
    card = dataset_card(tables, "me/prefs")
    assert card.startswith("---\nconfigs:\n- config_name: default")
    for text in (
        "Which is sharper?",
        'load_dataset("me/prefs")',
        "config_name: images",
        "config_name: votes",
        "salted hashes",
        "sigma 8.33",
        f"{tables.report.train_pairs} |",
        "seed 0",
    ):
        assert text in card
    assert "ann" not in card
