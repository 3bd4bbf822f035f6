"""The Hub adapter: publish a preference dataset, download one, say clearly what failed.

With :mod:`prefdata.ours`, :mod:`prefdata.parquet_read` and
:mod:`prefdata.backup_hub`, the only ranker modules that import ``datasets`` or
``huggingface_hub``. A push writes the dataset into a temporary folder, streaming
(memory bounded by a row group), and uploads it with ``upload_folder``: in
huggingface_hub 2.x that is the way for big folders too (``upload_large_folder`` is
gone): with ``hf_xet`` it streams files, splits a large folder into several commits
and resumes a re-run. The vote log is only read, so a failed push changes nothing.

Example:
    >>> push_dataset(project, "me/my-prefs", private=True)   # doctest: +SKIP
    PushResult(repo_id='me/my-prefs', url='https://huggingface.co/datasets/me/my-prefs', ...)
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from prefdata.ours import (  # noqa: F401  (build/save: the training sources use hub.*)
    PreferenceDataset,
    build_preference_dataset,
    save_parquet,
)
from prefdata.tables import CONFIG_DIRS, SplitReport
from ranker.errors import StudioError


class HubError(StudioError):
    """A Hub operation that could not run; ``kind`` says why (for the app and tests).

    kinds: ``token`` (no token), ``network`` (Hub unreachable), ``not_found`` (no such
    repo, or not visible to this token), ``refused`` (token lacks rights), ``invalid``
    (not a repo id), ``busy`` (a push to the repo is running).
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


# --- the Hub ---------------------------------------------------------------------------------
_push_locks: dict[str, threading.Lock] = {}
_push_locks_guard = threading.Lock()


@contextmanager
def repo_lock(repo_id: str) -> Iterator[None]:
    """One push per repo at a time: a second one fails at once instead of colliding."""
    with _push_locks_guard:
        lock = _push_locks.setdefault(repo_id, threading.Lock())
    if not lock.acquire(blocking=False):
        raise HubError("busy", f"a push to {repo_id} is already running; try again when it ends")
    try:
        yield
    finally:
        lock.release()


def resolve_token(token: str | None = None) -> str:
    """The token to write with: the given one (a Space user's OAuth token), else HF_TOKEN."""
    token = (token or "").strip() or os.environ.get("HF_TOKEN", "").strip()
    if not token:
        from huggingface_hub import get_token

        token = get_token() or ""
    if not token:
        raise HubError(
            "token",
            "no Hugging Face token: set the HF_TOKEN secret (Space settings or environment) "
            "or sign in with Hugging Face; nothing was pushed",
        )
    return token


def check_repo_id(repo_id: str) -> str:
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    repo_id = (repo_id or "").strip()
    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        raise HubError("invalid", f"{repo_id!r} is not a Hub repo id ('user/name'): {exc}") from exc
    if "/" not in repo_id:
        raise HubError("invalid", f"{repo_id!r} is not a Hub repo id: write it as 'user/name'")
    return repo_id


def hub_error(exc: Exception, repo_id: str, action: str) -> HubError:
    """Translate a huggingface_hub / network exception into a message that says which."""
    import httpx2
    from huggingface_hub.errors import (
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
    )

    if isinstance(exc, HubError):
        return exc
    if isinstance(exc, OfflineModeIsEnabled | LocalEntryNotFoundError):
        return HubError(
            "network",
            f"cannot {action} {repo_id}: no network access to the "
            f"Hugging Face Hub (offline mode, HF_HUB_OFFLINE=1): {exc}",
        )
    if isinstance(exc, RepositoryNotFoundError):
        return HubError(
            "not_found",
            f"cannot {action} {repo_id}: no such dataset repo on the "
            "Hub, or it is private and this token cannot see it",
        )
    if isinstance(exc, HfHubHTTPError):
        status = getattr(exc.response, "status_code", None)
        if status in (401, 403):
            return HubError(
                "refused",
                f"cannot {action} {repo_id}: the Hub refused the token "
                f"(HTTP {status}); it needs write access to this repo",
            )
        return HubError(
            "network", f"cannot {action} {repo_id}: the Hub answered HTTP {status}: {exc}"
        )
    if isinstance(exc, httpx2.TransportError | ConnectionError | TimeoutError):
        return HubError(
            "network",
            f"cannot {action} {repo_id}: the Hugging Face Hub cannot be reached (network: {exc})",
        )
    return HubError("network", f"cannot {action} {repo_id}: {type(exc).__name__}: {exc}")


@dataclass(frozen=True)
class PushResult:
    repo_id: str
    url: str
    report: SplitReport


def push_dataset(
    project,
    repo_id: str,
    *,
    private: bool = True,
    commit_message: str | None = None,
    token: str | None = None,
    test_fraction: float = 0.1,
    seed: int = 0,
    labelers: str = "publish",
    api=None,
) -> PushResult:
    """Build the project's dataset and upload it as a dataset repo (created if needed).

    The token is checked before anything is built; the dataset is written to a
    temporary folder and uploaded (old shards are replaced; a large folder may take
    several commits). Errors are :class:`HubError` saying whether the token, the
    network or the repo failed.
    """
    repo_id = check_repo_id(repo_id)
    token = resolve_token(token)
    with repo_lock(repo_id):
        ds = build_preference_dataset(project, test_fraction, seed, labelers)
        if api is None:
            from huggingface_hub import HfApi

            api = HfApi(token=token)
        with tempfile.TemporaryDirectory(prefix="pstudio-push-") as tmp:
            save_parquet(ds, tmp, repo_id)
            try:
                api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
                info = api.upload_folder(
                    repo_id=repo_id,
                    repo_type="dataset",
                    folder_path=tmp,
                    commit_message=commit_message or f"Preference Studio: {ds.report.summary()}",
                    delete_patterns=[f"{d}/*.parquet" for d in CONFIG_DIRS.values()],
                )
            except Exception as exc:  # every Hub/network failure becomes one clear error
                raise hub_error(exc, repo_id, "push to") from exc
    url = getattr(info, "repo_url", None) or f"https://huggingface.co/datasets/{repo_id}"
    return PushResult(repo_id, str(url), ds.report)


def download_dataset(
    repo_id: str,
    dest: str | Path,
    *,
    token: str | None = None,
    split: str | None = None,
    everything: bool = False,
) -> Path:
    """Fetch a dataset repo into ``dest``: its Parquet/JSON files (only ``split``'s when
    given), or every file with ``everything`` (a backup)."""
    from huggingface_hub import snapshot_download

    repo_id = check_repo_id(repo_id)
    if everything:
        patterns = None
    elif split:
        patterns = [
            "*.json",
            "README.md",
            f"**/{split}-*.parquet",
            f"{split}-*.parquet",
            f"**/{split}/*.parquet",
            f"{CONFIG_DIRS['images']}/*.parquet",  # pairs name their images by uid
        ]
    else:
        patterns = ["*.json", "README.md", "*.parquet", "**/*.parquet"]
    try:
        path = snapshot_download(
            repo_id,
            repo_type="dataset",
            local_dir=str(dest),
            allow_patterns=patterns,
            token=(token or os.environ.get("HF_TOKEN") or None),
        )
    except Exception as exc:
        raise hub_error(exc, repo_id, "download") from exc
    return Path(path)
