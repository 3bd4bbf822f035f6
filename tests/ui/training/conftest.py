"""The training tests' fixtures (a generated quality task, a tiny base model, one torch
thread, embeddings cached in tmp) for the Training tab's tests too."""

from tests.training.conftest import (  # noqa: F401
    embedding_cache_in_tmp,
    one_torch_thread,
    quality_json,
    tiny_base,
)
