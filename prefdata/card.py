"""The dataset card: the README of a published preference dataset.

Its YAML front matter declares one ``datasets`` config per table, so
``load_dataset(repo)`` gives the pairs and ``load_dataset(repo, "images")`` the
images (each stored once; pairs name them by uid); the body says what was asked,
what the tables hold, how the split was made and how to load pairs with their images.
"""

from __future__ import annotations

from prefdata.split import SPLIT_TRIES
from prefdata.tables import PreferenceTables, config_splits, table_files


def _size_category(n: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K")):
        if n < limit:
            return label
    return "100K<n<1M" if n < 1_000_000 else "n>1M"


def dataset_card(
    tables: PreferenceTables, repo_id: str | None = None, embedded: bool = False
) -> str:
    """The dataset repo's README: YAML configs so one line loads it, then what it holds.

    ``embedded`` describes the opt-in Pick-a-Pic-style export (pairs only, both images
    in every row) instead of the published layout.
    """
    r = tables.report
    yaml = ["---", "configs:"]
    configs = config_splits(tables)
    if embedded:
        configs = {"default": configs["default"]}
    for config, splits in configs.items():
        yaml.append(f"- config_name: {config}")
        yaml.append("  data_files:")
        for split in splits:
            yaml += [f"  - split: {split}", f"    path: {table_files(config, split)}"]
    yaml += [
        "tags:",
        "- preference",
        "- pairwise-comparison",
        "- image-quality",
        "- trueskill",
        "- preference-studio",
        "size_categories:",
        f"- {_size_category(len(tables.votes))}",
        "---",
    ]
    where = repo_id or "path/to/this/folder"
    if tables.labeler_policy == "publish":
        who = ", ".join(tables.labelers) or "none"
    elif tables.labeler_policy == "hash":
        who = f"{len(tables.labelers)}, published as salted hashes (pseudonyms)"
    else:
        who = "names not published"
    rating = ", ".join(f"{k} {v:g}" for k, v in tables.rating.items())
    ties = f"{r.ties} ties (label 0.5/0.5)" if r.ties else "no ties"
    embedded_columns = (
        "; `image_0`, `image_1` (both images embedded in every row, Pick-a-Pic style)"
        if embedded
        else ""
    )
    body = f"""
# {tables.project}: pairwise image preferences

Made with Preference Studio: people were shown two images and answered

> {tables.instruction}

## Contents

| table (config) | rows | what |
|---|---|---|
| `default` train | {r.train_pairs} | pairs whose two images are both train images |
| `default` test | {r.test_pairs} | pairs whose two images are both test images |
| `images` | {len(tables.images)} | every image with its TrueSkill rating and counts |
| `votes` | {len(tables.votes)} | the whole vote log in order, by image uid |

- Images: {r.voted_images} with votes ({r.train_images} train, {r.test_images} test),
  {r.unvoted_images} without.
- Pairs: {ties}; {r.mixed_pairs} pairs with one train and one test image are in no
  split (they are in `votes`).
- Labelers: {who}.
- Rating: TrueSkill, {rating}; `conservative` is mu - 3 sigma. `rank` is the
  project's leaderboard order (1 = best; the pair strategy's own ranking, which for
  `active` is its sort order or a Bradley-Terry fit of all votes).

## Columns

Pairs: `image_0_uid`, `image_1_uid` (as shown left and right; the SHA-256 prefix of the
file bytes, the key of the `images` table){embedded_columns}, `label_0`, `label_1` (1/0,
a tie 0.5/0.5), `best_image_uid` (empty for a tie), `labeler`, `created_at` (Unix
seconds), `instruction`, `project`, `response_ms`.

## Split

By image, so no test image appears in any training pair: {r.test_images} of the
{r.voted_images} voted images ({r.test_fraction:.0%}, seed {r.seed}) are test images,
drawn at random (the best of {SPLIT_TRIES} seeded draws by test pairs kept).{_raised(r)} The
`images` table's `split` column says where each image went; its `rank` gives the
human ranking of the test images.

{_load(where, embedded)}
"""
    return "\n".join(yaml) + "\n" + body


def _raised(r) -> str:
    if not r.raised:
        return ""
    return (
        f" The share was raised from the requested {r.requested_fraction:.0%} so that the "
        f"test split keeps {r.test_pairs} pairs (the requested share kept "
        f"{r.requested_test_pairs})."
    )


def _load(where: str, embedded: bool) -> str:
    if embedded:
        return f"""## Load

Every pair row carries both images, so this export grows with votes x image size.

```python
from datasets import load_dataset

pairs = load_dataset("{where}")   # train / test pairs, image_0 / image_1 decoded
```"""
    return f"""## Load

Each image is stored once, in the `images` config; pairs name their images by uid.

```python
from datasets import load_dataset

pairs = load_dataset("{where}")                             # train / test pairs
images = load_dataset("{where}", "images", split="train")   # every image once
row_of = {{uid: i for i, uid in enumerate(images["uid"])}}
pair = pairs["train"][0]
left, right = (images[row_of[pair[f"image_{{s}}_uid"]]]["image"] for s in (0, 1))
votes = load_dataset("{where}", "votes", split="train")     # the whole log, in order
```

Pick-a-Pic-style rows with both images embedded are an opt-in export of Preference
Studio (Dataset tab, format `parquet-embedded`)."""
