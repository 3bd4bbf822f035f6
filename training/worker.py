"""Background training runs: one at a time per runs folder, each in its own process.

A run is ``python -m training --config <run>/train_config.json`` started by
:class:`RunManager`; it reports only through its run folder (:mod:`training.runfiles`),
so a page refresh, a second browser or a restarted app sees the same run. The manager
remembers the active run in ``<runs>/active.json``; a process that died without saying
so is noticed and its run marked failed. Stopping writes the run's STOP file: the loop
saves a checkpoint at the next optimizer step and exits, and starting the run again
resumes it.

Example::

    manager = RunManager(ctx.runs_dir)
    name = manager.start(TrainConfig(data="pairs.json", preset="personal"))
    manager.snapshot(name)["status"]["state"]   # "loading", "training", ... "finished"
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from training.config import CONFIG_FILE, TrainConfig
from training.runfiles import ACTIVE_STATES, DONE_STATES, RunFiles

ACTIVE_FILE = "active.json"
RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,80}$")
PACKAGE_ROOT = Path(__file__).resolve().parents[1]


class RunBusyError(RuntimeError):
    """Another run is in progress; only one runs at a time."""


class UnknownRunError(ValueError):
    """A run name that is not a folder name, or names no run."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no run named {name!r} (run names use letters, digits, '.', '_' and '-')")


def _pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a live (not zombie) process."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


class RunManager:
    """Starts, watches and stops training runs under ``runs_dir`` (one at a time)."""

    def __init__(self, runs_dir: str | Path, python: str = sys.executable) -> None:
        self.runs_dir = Path(runs_dir)
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        self.python = python
        self._lock = threading.Lock()
        self._children: dict[int, subprocess.Popen] = {}

    @property
    def _active_path(self) -> Path:
        return self.runs_dir / ACTIVE_FILE

    def files(self, name: str) -> RunFiles:
        if not RUN_NAME.match(name or ""):
            raise UnknownRunError(name)
        return RunFiles(self.runs_dir / name)

    def _alive(self, pid: int) -> bool:
        child = self._children.get(pid)
        if child is not None:
            return child.poll() is None
        return _pid_alive(pid)

    def active(self) -> str | None:
        """The running run's name, after clearing a run whose process has died."""
        try:
            record = json.loads(self._active_path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        files = self.files(record["run"])
        state = files.read_status().get("state")
        if self._alive(int(record["pid"])) and state not in DONE_STATES:
            return record["run"]  # (a process that reported its end may still be exiting)
        if state in ACTIVE_STATES + ("queued",):
            code = self._children.get(int(record["pid"]))
            code = code.returncode if code is not None else "unknown"
            files.write_status(
                state="failed",
                message=f"the training process exited unexpectedly (exit code {code}); "
                "see the log, then start it again to resume from the last checkpoint",
                error="process died",
            )
        self._active_path.unlink(missing_ok=True)
        return None

    def start(self, config: TrainConfig, name: str | None = None) -> str:
        """Start (or resume, when the run folder has checkpoints) a run; returns its name.

        Raises :class:`RunBusyError` while another run is active and ``ConfigError`` for
        bad settings. The data and model are checked by the run itself, within seconds.
        """
        with self._lock:
            current = self.active()
            if current is not None:
                raise RunBusyError(f"run {current!r} is still in progress: stop it first")
            name = name or time.strftime("run-%Y%m%d-%H%M%S")
            files = self.files(name)
            config = dataclasses.replace(config, output_dir=str(files.root)).validate()
            config.save(files.root)
            files.clear_stop()
            files.write_status(state="queued", message="starting the training process",
                               step=0, total_steps=config.total_steps, error=None)  # fmt: skip
            log = files.log_path.open("ab")
            # Progress bars of datasets/tqdm are noise in a log file read by a page.
            env = {**os.environ, "PYTHONUNBUFFERED": "1", "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
                   "TQDM_DISABLE": "1"}  # fmt: skip
            env["PYTHONPATH"] = os.pathsep.join(
                p for p in (str(PACKAGE_ROOT), env.get("PYTHONPATH", "")) if p
            )
            child = subprocess.Popen(
                [self.python, "-m", "training", "--config", str(files.root / CONFIG_FILE)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=str(PACKAGE_ROOT), env=env, start_new_session=True,
            )  # fmt: skip
            log.close()
            self._children[child.pid] = child
            # Reap the process as soon as it exits (else a failed run stays a zombie
            # until someone polls it); wait() only records the exit code.
            threading.Thread(target=child.wait, name=f"reap-{name}", daemon=True).start()
            record = {"run": name, "pid": child.pid, "started": time.time()}
            self._active_path.write_text(json.dumps(record))
            return name

    def resume(self, name: str) -> str:
        """Start a stopped or failed run again from its saved settings and checkpoints."""
        files = self.files(name)
        if not (files.root / CONFIG_FILE).is_file():
            raise UnknownRunError(name)
        config = dataclasses.replace(TrainConfig.load(files.root), resume=True)
        return self.start(config, name)

    def stop(self, name: str | None = None, *, force: bool = False) -> bool:
        """Ask the active run to stop at its next step (``force``: terminate it now).

        Returns False when no run was in progress.
        """
        current = self.active()
        if current is None or (name is not None and name != current):
            return False
        files = self.files(current)
        files.request_stop()
        if force:
            record = json.loads(self._active_path.read_text())
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(int(record["pid"]), signal.SIGTERM)
            files.write_status(state="stopped", message="terminated; start it again to resume")
        else:
            files.write_status(message="stopping at the next step (a checkpoint is saved)")
        return True

    def wait(self, name: str, timeout: float = 600.0, poll: float = 0.2) -> dict[str, Any]:
        """Block until ``name`` is no longer active; returns its final status."""
        deadline = time.monotonic() + timeout
        while self.active() == name and time.monotonic() < deadline:
            time.sleep(poll)
        return self.files(name).read_status()

    def runs(self) -> list[str]:
        """Run names, newest first."""
        found = [p for p in self.runs_dir.iterdir() if (p / CONFIG_FILE).is_file()]
        return [p.name for p in sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)]

    def snapshot(self, name: str | None = None, log_chars: int = 8_000) -> dict[str, Any]:
        """Everything a viewer shows: status, train curve, evaluations, log tail.

        ``name`` defaults to the active run, else the newest one; ``{}`` when there is none.
        """
        active = self.active()
        name = name or active or next(iter(self.runs()), None)
        if name is None:
            return {}
        files = self.files(name)
        return {
            "run": name,
            "active": name == active,
            "status": files.read_status(),
            "train": files.read_events("train"),
            "eval": files.read_events("eval"),
            "data": next(iter(files.read_events("data")), {}),
            "log": files.read_log(log_chars),
        }
