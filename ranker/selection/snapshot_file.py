"""The model-in-the-loop selector's latest snapshots on disk, so a restart replays a few votes.

The in-memory snapshots (:mod:`.loop_snapshots`) make an undo cheap, but they die with
the process: a server restart, a project opened in a fresh process or the same model
attached again used to replay every vote (about 7 s at 10,000 images and 10,000 votes).
This file keeps the ``KEEP`` latest ones (the latest, and the one before it for a log
that lost the vote that triggered the latest refit) beside the project's features.

It is a cache, never the truth: the vote log in SQLite is. A snapshot is restored only
when all of these hold, else the selector replays every vote as before:

- the file's ``fingerprint`` equals the selector's: a hash of the head features (every
  float of ``phi``, in image order), of the settings the state depends on (number of
  images, priors, evidence, the guard's thresholds, the refit interval) and of this
  file's format. New features, another model or other settings never restore;
- the pool's first ``votes`` votes hash to the digest stored with the snapshot (an undo
  or an excluded vote inside that prefix makes it stale), and the log is longer than
  ``votes`` (a log of exactly ``votes`` votes has not reached that refit);
- the file reads back whole (the zip's CRC-32 is checked on every member) with the
  shapes the features imply.

A file that cannot be read is ignored with a warning in the log; a stale one with an
info line. Writes are atomic (a temporary file, fsync, rename): a crash leaves the old
file or the new one, never half of one. A failed write (disk full, read-only folder) is
logged and costs only the next restart's speed.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from collections.abc import Hashable, Sequence
from dataclasses import astuple
from pathlib import Path

import numpy as np

from ranker.online_head import HeadFit, HeadPrior
from ranker.pool import Pool
from ranker.selection.loop_snapshots import HeadState, Snapshot

log = logging.getLogger(__name__)

FORMAT = 1  # bump when the layout or the meaning of a field changes
KEEP = 2  # snapshots written: the latest and the one before it


def features_digest(phi: np.ndarray) -> str:
    """A hash of the head features: every float, in image order (computed once per
    selector: about 5 ms at 10,000 images)."""
    h = hashlib.sha256(f"{phi.shape}|{phi.dtype}".encode())
    h.update(np.ascontiguousarray(phi).tobytes())
    return h.hexdigest()


def fingerprint(features: str, settings: Hashable, every: int) -> str:
    """What the selector's state depends on besides the votes, as a hex digest:
    :func:`features_digest`, the settings key (its ``repr``) and the refit interval."""
    return hashlib.sha256(f"v{FORMAT}|{features}|{settings!r}|{every}".encode()).hexdigest()


def log_digest(first: Sequence, second: Sequence, result: Sequence, votes: int) -> str:
    """A hash of the first ``votes`` votes of a log (pairs and outcomes, in order)."""
    h = hashlib.sha256(str(votes).encode())
    for column, dtype in ((first, np.int64), (second, np.int64), (result, np.float64)):
        h.update(np.asarray(column[:votes], dtype=dtype).tobytes())
    return h.hexdigest()


class SnapshotFile:
    """One selector's snapshots at ``path`` (see the module docstring)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def save(
        self,
        digest: str,
        snapshots: Sequence[Snapshot],
        log_of: tuple[Sequence, Sequence, Sequence],
        record: np.ndarray | None = None,
    ) -> bool:
        """Write ``snapshots`` (oldest first) made from the log ``log_of`` under the
        fingerprint ``digest``, with ``record`` (what the selector recorded per vote, up
        to the last snapshot) if any. Returns False (and logs why) when it failed."""
        arrays: dict[str, np.ndarray] = {
            "fingerprint": np.array(digest),
            "count": np.array(len(snapshots)),
        }
        for i, snap in enumerate(snapshots):
            arrays |= _snapshot_arrays(f"s{i}.", snap, log_digest(*log_of, snap.votes))
        if record is not None:
            arrays["record"] = np.asarray(record, dtype=np.float64)
        tmp = self.path.with_name(f"{self.path.stem}.tmp{os.getpid()}.npz")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
            return True
        except OSError as err:
            log.warning("could not write the model-loop snapshot %s: %s", self.path, err)
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            return False

    def load(self, digest: str, pool: Pool, p: int) -> tuple[list[Snapshot], np.ndarray | None]:
        """The stored snapshots valid for ``pool``'s log under ``digest`` (oldest first;
        empty when none is), and the stored record. ``p``: the head's feature count."""
        if not self.path.exists():
            return [], None
        try:
            with np.load(self.path, allow_pickle=False) as data:
                if str(data["fingerprint"]) != digest:
                    log.info("model-loop snapshot %s is for other features or settings: "
                             "replaying every vote", self.path)  # fmt: skip
                    return [], None
                stored = [_read(data, f"s{i}.", pool.n, p) for i in range(int(data["count"]))]
                record = np.asarray(data["record"]) if "record" in data.files else None
        except Exception as err:  # a cache: any unreadable file means a full replay
            log.warning("ignoring the unreadable model-loop snapshot %s (%s: %s): "
                        "replaying every vote", self.path, type(err).__name__, err)  # fmt: skip
            return [], None
        valid = [
            snap
            for snap, want in stored
            if snap.votes < pool.n_votes
            and want == log_digest(pool.first, pool.second, pool.result, snap.votes)
        ]
        if len(valid) < len(stored):
            log.info("model-loop snapshot %s: %d of %d stale (the vote log changed)",
                     self.path, len(stored) - len(valid), len(stored))  # fmt: skip
        return valid, record

    def delete(self) -> None:
        self.path.unlink(missing_ok=True)


def _snapshot_arrays(prefix: str, snap: Snapshot, digest: str) -> dict[str, np.ndarray]:
    out = {
        "votes": np.array(snap.votes),
        "log": np.array(digest),
        "guard": np.array([snap.excess_loss, snap.mark], dtype=np.float64),
        "on": np.array(snap.on),
        "switches": np.array(snap.switches, dtype=np.int64),
    }
    for name, h in (("head", snap.head), ("votes_only", snap.votes_only)):
        fit = h.fit
        out |= {
            f"{name}.beta": fit.beta, f"{name}.cov": fit.cov, f"{name}.u": fit.u,
            f"{name}.var_u": fit.var_u, f"{name}.steps": np.array(fit.newton_steps),
            f"{name}.scores": h.scores, f"{name}.head_var": h.head_var,
            f"{name}.prior": np.array(astuple(h.prior), dtype=np.float64),
        }  # fmt: skip
    return {prefix + k: v for k, v in out.items()}


def _read(data, prefix: str, n: int, p: int) -> tuple[Snapshot, str]:
    """One snapshot and its log digest; ValueError when a shape or type is off."""

    def get(name: str, shape: tuple, dtype) -> np.ndarray:
        a = data[prefix + name]
        if a.shape != shape or a.dtype != dtype:
            raise ValueError(f"{prefix}{name} is {a.dtype}{a.shape}, expected {dtype}{shape}")
        return a

    heads = []
    for name, q in (("head", p), ("votes_only", 0)):
        fit = HeadFit(
            get(f"{name}.beta", (q,), np.float64), get(f"{name}.cov", (q, q), np.float64),
            get(f"{name}.u", (n,), np.float64), get(f"{name}.var_u", (n,), np.float64),
            int(data[prefix + f"{name}.steps"]),
        )  # fmt: skip
        prior = HeadPrior(*get(f"{name}.prior", (len(astuple(HeadPrior())),), np.float64).tolist())
        scores = get(f"{name}.scores", (n,), np.float32)
        heads.append(HeadState(fit, scores, get(f"{name}.head_var", (n,), np.float32), prior))
    excess_loss, mark = get("guard", (2,), np.float64).tolist()
    switches = data[prefix + "switches"]
    snap = Snapshot(
        int(data[prefix + "votes"]), heads[0], heads[1], excess_loss, bool(data[prefix + "on"]),
        mark, tuple(int(v) for v in switches.astype(np.int64)),
    )  # fmt: skip
    return snap, str(data[prefix + "log"])
