"""The fine-tuning loop, in the accelerate style: the same code on CPU, one GPU or many.

``batch_size`` pairs per optimizer step are reached by gradient accumulation over
``device_batch_size`` pairs per device; winner and loser go through one forward; grads
are clipped at sync points; ``save_state``/``load_state`` make runs resumable. Launch
with ``python -m training ...`` or ``accelerate launch -m training ...``.

Example::

    result = train(TrainConfig(data="pairs.json", output_dir="runs/me"))
    result.final_dir  # the model, loadable by the Scoring tab
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch.utils.data import DataLoader

from training.batches import EmbeddingPairDataset, PairDataset, PairStream, model_input
from training.best import clear_best, load_best, save_best
from training.config import TrainConfig
from training.data import PreferenceData
from training.embedding_path import embedding_tables, frozen_loader
from training.evaluate import build_eval_set, evaluate
from training.export import save_final
from training.losses import bt_loss
from training.runfiles import RunFiles
from training.schedule import make_scheduler
from training.setup import (
    RunError,
    check_resume,
    configure_model,
    make_accelerator,
    small_data_warnings,
)
from training.sources import PROJECT_SNAPSHOT, load_base_model, load_data

__all__ = ["RunError", "RunResult", "configure_model", "train", "train_step"]

log = logging.getLogger("training")


@dataclass
class RunResult:
    """What a run did; ``final_dir`` is None when it stopped before the end."""

    output_dir: Path
    final_dir: Path | None
    stopped: bool
    steps: int
    samples: int
    metrics: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    resumed_from: int = 0
    seconds: float = 0.0
    pairs_per_second: float = 0.0
    best_step: int | None = None
    warnings: list[str] = field(default_factory=list)


def train_step(
    model: torch.nn.Module,
    batch: dict[str, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    accelerator: Accelerator,
    params: list[torch.nn.Parameter],
    max_grad_norm: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One micro-batch: a single forward over the 2B images, BT loss, backward, and (at a
    sync point) clip and step. Returns the detached loss and pair accuracy.

    ``batch["a"]``/``["b"]`` are ``uint8`` pixels, or cached pooled embeddings in
    head-only runs (the model then runs its head only)."""
    with accelerator.accumulate(model):
        inputs = model_input(torch.cat([batch["a"], batch["b"]]))
        score_a, score_b = model(inputs).float().chunk(2)
        loss = bt_loss(score_a, score_b, batch["label"])
        accelerator.backward(loss)
        if accelerator.sync_gradients and max_grad_norm > 0:
            accelerator.clip_grad_norm_(params, max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return loss.detach(), pair_credit_mean(score_a.detach(), score_b.detach(), batch["label"])


def pair_credit_mean(
    score_a: torch.Tensor, score_b: torch.Tensor, label: torch.Tensor
) -> torch.Tensor:
    """Accuracy over the decisive pairs of a batch, on the device (no host sync):
    :func:`common.maths.pair_credit` in torch (winner strictly higher 1, exact tie 0.5)."""
    decisive = (label != 0.5).float()
    oriented = torch.where(label > 0.5, score_a - score_b, score_b - score_a)
    credit = (oriented > 0).float() + 0.5 * (oriented == 0).float()
    return (credit * decisive).sum() / decisive.sum().clamp(min=1)


def train(
    config: TrainConfig,
    *,
    data: PreferenceData | None = None,
    model: torch.nn.Module | None = None,
    studio: Any = None,
    should_stop: Callable[[int], bool] | None = None,
) -> RunResult:
    """Run (or resume) one fine-tuning run and return what it did.

    ``data``/``model`` replace loading them from ``config`` (tests, the app's project
    source); ``studio`` is the ranking service for ``data_kind="project"``;
    ``should_stop(step)`` is polled after every optimizer step, as is the run's STOP file.
    Bad data, a non-SigLIP base model and bad settings raise before any training.
    """
    config.validate()
    files = RunFiles(config.output_dir)
    accelerator = make_accelerator(config, files)
    main = accelerator.is_main_process
    try:
        resume_from = check_resume(config, files)
        if main:
            if files.read_status().get("state") != "queued":
                files.clear_stop()  # a direct start drops an old stop request; a queued
                # run (started by the worker) keeps one made while it was starting
            if resume_from is None:  # a fresh start: old checkpoints, snapshots, curves go
                shutil.rmtree(files.checkpoints_dir, ignore_errors=True)
                clear_best(files.root)
                shutil.rmtree(files.root / PROJECT_SNAPSHOT, ignore_errors=True)
                files.events_path.unlink(missing_ok=True)
            config.save(files.root)
            files.write_status(
                state="loading",
                message="reading data and model",
                pid=os.getpid(),
                error=None,
                step=0,
                total_steps=config.total_steps,
            )
        # The main process prepares first (writes a project snapshot, downloads the base
        # model); the others then read what it wrote, so every rank trains on the same data.
        with accelerator.main_process_first():
            data = (data or load_data(config, studio=studio)).check()
            model = model if model is not None else load_base_model(config)
        config = _size_to_data(config, data, accelerator, files)
        warnings = small_data_warnings(len(data.train), len(data.test))
        if main:
            files.append_event("data", **data.summary(), warnings=warnings)
            files.write_status(warnings=warnings)
        log.info("data: %s", data.summary())
        for warning in warnings:
            log.warning("small data: %s", warning)
        set_seed(config.seed)
        if config.cpu_threads:
            torch.set_num_threads(config.cpu_threads)
        params = configure_model(model, config)
        run = _Run(config, files, accelerator, data, model, params)
        result = run.run(resume_from, should_stop)
        result.warnings = warnings
        return result
    except BaseException as exc:
        if main:
            files.write_status(
                state="failed", message=f"{type(exc).__name__}: {exc}", error=str(exc)
            )
        raise
    finally:
        accelerator.end_training()


def _size_to_data(config: TrainConfig, data: PreferenceData, accelerator, files) -> TrainConfig:
    """Set a run's length from its training pairs (``total_samples=0``) and record it."""
    sized = config.sized_to(len(data.train), accelerator.num_processes)
    if sized is config:
        return config
    per_step = sized.device_batch_size * accelerator.num_processes
    accelerator.gradient_accumulation_steps = sized.batch_size // per_step
    if accelerator.is_main_process:
        sized.save(files.root)  # what the run really does; a resume sizes it alike
        files.write_status(total_steps=sized.total_steps)
    log.info(
        "sized to %d training pairs: batch %d, %d steps (%d pairs), evaluate every %d",
        len(data.train), sized.batch_size, sized.total_steps, sized.total_samples,
        sized.test_every,
    )  # fmt: skip
    return sized


class _Run:
    """The prepared objects of one run and the steps of its flow."""

    def __init__(self, config, files, accelerator, data, model, params) -> None:
        self.config, self.files, self.accelerator, self.data = config, files, accelerator, data
        self.main = accelerator.is_main_process
        self.params = params
        size = model.image_size
        steps = config.total_steps
        sampler = PairStream(len(data.train), steps * config.batch_size, config.seed)
        table = None
        if config.train_mode == "head" and config.cache_embeddings:
            # The backbone is frozen: each image's pooled embedding is computed once (and
            # kept on disk), and a whole batch is one micro-batch of head-only work.
            model.to(accelerator.device)
            table = embedding_tables(model, data, config, accelerator)
            accelerator.gradient_accumulation_steps = 1
            loader = DataLoader(
                EmbeddingPairDataset(table, data.train),
                batch_size=config.batch_size // accelerator.num_processes,
                sampler=sampler,
            )
        else:
            loader = DataLoader(
                PairDataset(data.sources, data.keys, data.train, size),
                batch_size=config.device_batch_size,
                sampler=sampler,
                num_workers=config.num_workers,
                persistent_workers=config.num_workers > 0,
                pin_memory=torch.cuda.is_available() and not config.cpu,
            )
        eval_set = build_eval_set(
            data,
            size,
            batch_size=2 * config.device_batch_size,
            num_workers=config.num_workers,
            robustness_images=config.robustness_images,
            seed=config.seed,
            embeddings=table,
        )
        optimizer = torch.optim.AdamW(
            params,
            lr=config.learning_rate,
            weight_decay=config.weight_decay,
            betas=(config.adam_beta1, config.adam_beta2),
            eps=config.adam_eps,
        )
        scheduler = make_scheduler(optimizer, config.lr_scheduler, steps, config.warmup_steps)
        self.model, self.optimizer, self.loader, self.scheduler = accelerator.prepare(
            model, optimizer, loader, scheduler
        )
        eval_set.images = accelerator.prepare(eval_set.images)
        eval_set.robustness = {k: accelerator.prepare(v) for k, v in eval_set.robustness.items()}
        if table is not None:  # the damaged copies' embeddings, too, are computed once
            eval_set.robustness = {
                k: frozen_loader(self.model, v, accelerator) for k, v in eval_set.robustness.items()
            }
        self.eval_set = eval_set
        self.history: list[dict[str, Any]] = []
        self.test_scores = None
        self.best: dict[str, Any] | None = None
        self.best_saved = True  # whether best/ on disk holds self.best
        tracked = {k: v for k, v in config.to_dict().items() if v != ""}
        accelerator.init_trackers("run", config=tracked)

    def status(self, **fields: Any) -> None:
        if self.main:
            self.files.write_status(**fields)

    def evaluate(self, step: int) -> None:
        self.status(state="evaluating", message=f"evaluating at step {step}")
        result, self.test_scores = evaluate(self.model, self.eval_set, self.accelerator)
        record = {"step": step, "samples": step * self.config.batch_size, **result}
        self.history.append(record)
        self.keep_if_best(record)
        self.accelerator.log({f"test/{k}": v for k, v in result.items()}, step=record["samples"])
        if self.main:
            self.files.append_event("eval", **record)
        log.info("eval at step %d: %s", step, {k: round(v, 4) for k, v in result.items()})

    def keep_if_best(self, record: dict[str, Any]) -> None:
        """Remember the trained weights of the evaluation with the lowest test loss."""
        if self.best is not None and not record["nll"] < self.best["record"]["nll"]:
            return
        model = self.accelerator.unwrap_model(self.model)
        trained = {n for n, p in model.named_parameters() if p.requires_grad}
        state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()
                 if k in trained}  # fmt: skip
        self.best = {"record": dict(record), "state": state, "scores": self.test_scores}
        self.best_saved = False

    def restore_best(self, result: RunResult) -> None:
        """Put the best evaluation's weights back before saving (the final model)."""
        if self.best is None:
            return
        record = self.best["record"]
        result.best_step = record["step"]
        if record["step"] == result.steps:
            return
        model = self.accelerator.unwrap_model(self.model)
        model.load_state_dict(self.best["state"], strict=False)
        self.test_scores = self.best["scores"]
        result.metrics = dict(record)
        if self.main:
            self.files.append_event("best", step=record["step"], nll=record["nll"])
        log.info("kept the weights of step %d (lowest test loss %.4f)", record["step"],
                 record["nll"])  # fmt: skip

    def save_checkpoint(self, step: int) -> None:
        folder = self.files.checkpoints_dir / f"step_{step:07d}"
        self.accelerator.wait_for_everyone()
        self.accelerator.save_state(str(folder))
        if self.main:
            self.config.save(folder)
            state = {"step": step, "history": self.history}
            (folder / "trainer_state.json").write_text(json.dumps(state))
            if self.best is not None and not self.best_saved:  # the best survives a resume
                save_best(self.files.root, self.best)
            for old in self.files.checkpoints()[: -self.config.keep_checkpoints]:
                shutil.rmtree(old, ignore_errors=True)
        self.best_saved = True
        self.accelerator.wait_for_everyone()

    def resume(self, checkpoint: Path) -> int:
        self.accelerator.load_state(str(checkpoint))
        state = json.loads((checkpoint / "trainer_state.json").read_text())
        self.history = state["history"]
        self.best = load_best(self.files.root, up_to_step=state["step"])
        micro_batches = state["step"] * self.accelerator.gradient_accumulation_steps
        self.loader = self.accelerator.skip_first_batches(self.loader, micro_batches)
        if self.main:  # steps logged after this checkpoint (before a crash) are redone
            self.files.truncate_events(state["step"])
        log.info("resumed from %s at step %d", checkpoint, state["step"])
        return int(state["step"])

    def log_step(self, step: int, losses: list, accs: list) -> None:
        acc = self.accelerator
        loss = acc.reduce(torch.stack(losses).mean(), "mean").item()
        accuracy = acc.reduce(torch.stack(accs).mean(), "mean").item()
        lr = self.scheduler.get_last_lr()[0]
        samples = step * self.config.batch_size
        acc.log({"train/loss": loss, "train/accuracy": accuracy, "train/lr": lr}, step=samples)
        if self.main:
            self.files.append_event(
                "train", step=step, samples=samples, loss=loss, accuracy=accuracy, lr=lr
            )
            self.files.write_status(
                state="training", step=step, message=f"step {step}/{self.config.total_steps}"
            )

    def stop_requested(self, step: int, should_stop: Callable[[int], bool] | None) -> bool:
        """Stop when asked by the caller or the STOP file, decided alike on every process."""
        stop = (should_stop is not None and should_stop(step)) or self.files.stop_requested()
        flag = torch.tensor(float(stop), device=self.accelerator.device)
        return bool(self.accelerator.reduce(flag, "max").item())

    def run(self, resume_from: Path | None, should_stop) -> RunResult:
        cfg, steps = self.config, self.config.total_steps
        start = self.resume(resume_from) if resume_from is not None else 0
        if start == 0 and cfg.eval_at_start:
            self.evaluate(0)
        self.model.train()
        self.status(state="training", message="training", step=start)
        began, step, stopped = time.perf_counter(), start, False
        losses, accs = [], []
        for batch in self.loader:
            loss, accuracy = train_step(
                self.model, batch, self.optimizer, self.accelerator, self.params, cfg.max_grad_norm
            )
            losses.append(loss)
            accs.append(accuracy)
            if not self.accelerator.sync_gradients:
                continue
            self.scheduler.step()
            step += 1
            self.log_step(step, losses, accs)
            losses, accs = [], []
            if step == steps:
                break
            if _crossed(step, cfg.batch_size, cfg.test_every):
                self.evaluate(step)
            stopped = self.stop_requested(step, should_stop)
            if stopped or _crossed(step, cfg.batch_size, cfg.checkpoint_every):
                self.save_checkpoint(step)
            if stopped:
                break
        seconds = time.perf_counter() - began
        result = RunResult(
            output_dir=self.files.root,
            final_dir=None,
            stopped=stopped,
            steps=step,
            samples=step * cfg.batch_size,
            history=self.history,
            resumed_from=start,
            seconds=seconds,
            pairs_per_second=(step - start) * cfg.batch_size / max(seconds, 1e-9),
        )
        if stopped:
            self.status(
                state="stopped", message=f"stopped at step {step}; start it again to resume"
            )
        else:
            self.finish(result)
        if not result.metrics:
            result.metrics = dict(self.history[-1]) if self.history else {}
        return result

    def finish(self, result: RunResult) -> None:
        if not self.history or self.history[-1]["step"] != result.steps:
            self.evaluate(result.steps)
        result.metrics = dict(self.history[-1])
        self.restore_best(result)
        self.status(state="saving", message="fitting the calibration and saving the model")
        self.accelerator.wait_for_everyone()
        # Called on every process: under FSDP/DeepSpeed this gathers the full weights.
        state_dict = self.accelerator.get_state_dict(self.model)
        if self.main:
            model = self.accelerator.unwrap_model(self.model)
            result.final_dir = save_final(
                model, self.config, self.files, self.eval_set, self.test_scores, self.data,
                result, state_dict=state_dict,
            )  # fmt: skip
            best = result.best_step
            note = (
                f" (kept step {best}: lowest test loss)" if best not in (None, result.steps) else ""
            )
            self.status(
                state="finished", message=f"finished{note}", final_dir=str(result.final_dir),
                best_step=best,
            )  # fmt: skip
        self.accelerator.wait_for_everyone()


def _crossed(step: int, batch_size: int, every: int) -> bool:
    """Whether the optimizer step that ended at ``step`` crossed a multiple of ``every`` pairs."""
    if every <= 0:
        return False
    return (step * batch_size) // every > ((step - 1) * batch_size) // every
