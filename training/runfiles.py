"""The files of one run folder: the only channel between a run and whoever watches it.

A run writes its state to ``status.json`` (replaced atomically) and appends one JSON
line per logged step and evaluation to ``events.jsonl``; the app, a second browser or a
restarted server reads the same files, so they all see the same run. Asking a run to
stop is creating its ``STOP`` file.

Layout::

    <run>/train_config.json   the settings (also in every checkpoint and in final/)
    <run>/status.json         state, progress, message, error
    <run>/events.jsonl        {"kind": "train"|"eval"|"data", ...} per line
    <run>/log.txt             the process output (written by the worker)
    <run>/checkpoints/step_N  accelerate save_state folders
    <run>/tensorboard/        tracker logs
    <run>/final/              the fine-tuned model, calibration, metrics and model card
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

ACTIVE_STATES = ("starting", "loading", "training", "evaluating", "saving")
DONE_STATES = ("finished", "stopped", "failed")


class RunFiles:
    """Paths and readers/writers of one run folder."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @property
    def status_path(self) -> Path:
        return self.root / "status.json"

    @property
    def events_path(self) -> Path:
        return self.root / "events.jsonl"

    @property
    def log_path(self) -> Path:
        return self.root / "log.txt"

    @property
    def stop_path(self) -> Path:
        return self.root / "STOP"

    @property
    def checkpoints_dir(self) -> Path:
        return self.root / "checkpoints"

    @property
    def final_dir(self) -> Path:
        return self.root / "final"

    @property
    def tracker_dir(self) -> Path:
        return self.root / "tensorboard"

    def write_status(self, **fields: Any) -> dict[str, Any]:
        """Merge ``fields`` into status.json (atomic replace) and return the new status."""
        status = self.read_status()
        status.update(fields, updated_at=time.time())
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.status_path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(status, indent=1, default=_plain))
        os.replace(tmp, self.status_path)
        return status

    def read_status(self) -> dict[str, Any]:
        try:
            return json.loads(self.status_path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def append_event(self, kind: str, **fields: Any) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"kind": kind, "time": time.time(), **fields}, default=_plain)
        with self.events_path.open("a") as fh:
            fh.write(line + "\n")

    def read_events(self, kind: str | None = None) -> list[dict[str, Any]]:
        """All events (of one kind), skipping a half-written last line."""
        try:
            lines = self.events_path.read_text().splitlines()
        except FileNotFoundError:
            return []
        events = []
        for line in lines:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if kind is None or event.get("kind") == kind:
                events.append(event)
        return events

    def truncate_events(self, last_step: int) -> None:
        """Drop train/eval events after ``last_step`` (a resumed run logs them again)."""
        kept = [
            e
            for e in self.read_events()
            if e.get("kind") == "data" or e.get("step", 0) <= last_step
        ]
        tmp = self.events_path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text("".join(json.dumps(e, default=_plain) + "\n" for e in kept))
        os.replace(tmp, self.events_path)

    def read_log(self, max_chars: int = 20_000) -> str:
        try:
            with self.log_path.open("rb") as fh:
                fh.seek(0, os.SEEK_END)
                size = fh.tell()
                fh.seek(max(0, size - max_chars))
                return fh.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def request_stop(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.stop_path.write_text(str(time.time()))

    def stop_requested(self) -> bool:
        return self.stop_path.exists()

    def clear_stop(self) -> None:
        self.stop_path.unlink(missing_ok=True)

    def checkpoints(self) -> list[Path]:
        """Complete checkpoints, oldest first (a folder without trainer_state.json is partial)."""
        if not self.checkpoints_dir.is_dir():
            return []
        found = [
            p
            for p in self.checkpoints_dir.glob("step_*")
            if (p / "trainer_state.json").is_file() and p.name[5:].isdigit()
        ]
        return sorted(found, key=lambda p: int(p.name[5:]))


def _plain(value: Any) -> Any:
    """JSON fallback for numpy scalars and paths."""
    if hasattr(value, "item"):
        return value.item()
    return str(value)
