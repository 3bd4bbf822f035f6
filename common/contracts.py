"""Every data contract of Preference Studio, declared once.

Table and column names for the vote log, the published preference dataset, the
Image Ranker files and the score tables live here; every reader and writer imports
them from this module instead of spelling strings again.
"""

from __future__ import annotations

DEFAULT_INSTRUCTION = "Which image has better overall quality?"
DEFAULT_MODEL_ID = "fancyfeast/joyquality-siglip2-so400m-512-16-o8eg1n4c"

# Outcomes of one comparison, from the point of view of the pair as shown.
LEFT, RIGHT, TIE = "left", "right", "tie"
OUTCOMES = (LEFT, RIGHT, TIE)

# --- Leaderboard / our own export (JSON and CSV) -------------------------------------
# An image's rating and record, the same in the leaderboard and the dataset's images table
RATING_COLUMNS = (
    "mu",
    "sigma",
    "conservative",
    "wins",
    "losses",
    "ties",
    "comparisons",
    "excluded",
    "exclusion_reason",
)
LEADERBOARD_COLUMNS = ("rank", "uid", "path", *RATING_COLUMNS)

# --- Image Ranker's files (exact headers) ---------------------------------------------
IR_COMPARISONS_HEADER = ("Winner", "Loser")
IR_RANKINGS_HEADER = ("Image", "ELO", "Uncertainty", "Upvotes", "Downvotes")
IR_REMOVED_WINNER = "None"

# --- Published preference dataset (issue 4) -------------------------------------------
# Pair rows name their images by uid; each image is stored once, in the images table,
# so a dataset's size is its image bytes plus a small row per vote.
PAIRS_COLUMNS = (
    "image_0_uid",
    "image_1_uid",
    "label_0",
    "label_1",
    "best_image_uid",
    "labeler",
    "created_at",
    "instruction",
    "project",
)
# The opt-in Pick-a-Pic-style export (and datasets published before images were stored
# once) embeds both images in every pair row, in front of PAIRS_COLUMNS.
EMBEDDED_IMAGE_COLUMNS = ("image_0", "image_1")
# rank: the project's default leaderboard order (ranker.results.default_order)
IMAGES_COLUMNS = ("uid", "image", "rank", *RATING_COLUMNS, "context")
TRL_COLUMNS = ("chosen", "rejected")
TRL_EXTRA_COLUMNS = ("prompt",)  # the instruction, as TRL's prompt
PICKAPIC_IMAGE_COLUMNS = ("jpg_0", "jpg_1")
# Columns the published dataset carries beyond the two tables above, so a re-import
# rebuilds the same project: the vote's answer time, which split an image went to
# ("train", "test", or "unvoted" for images in no vote) and a model pre-ranking's
# starting rating. The project's settings go in PROJECT_FILE beside the tables.
PAIRS_EXTRA_COLUMNS = ("response_ms",)
# The complete vote log by image uid, in order (mixed train/test pairs included): what
# a re-import replays, so resuming elsewhere continues exactly where the log stopped.
VOTES_COLUMNS = (
    "image_0_uid",
    "image_1_uid",
    "label_0",
    "label_1",
    "labeler",
    "created_at",
    "response_ms",
)
IMAGES_EXTRA_COLUMNS = ("split", "prior_mu", "prior_sigma")
DATASET_SPLITS = ("train", "test")
UNVOTED_SPLIT = "unvoted"
PROJECT_FILE = "preference_studio.json"
LABELER_POLICIES = ("publish", "hash", "drop")

# --- Score tables written by model.score (issue 5) ------------------------------------
SCORE_COLUMNS = ("path", "score", "bucket", "error")
