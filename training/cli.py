"""``pstudio-train``: fine-tune JoyQuality from the command line.

Every :class:`~training.config.TrainConfig` field is an option (``--learning-rate``,
``--no-resume``...). Settings are applied in this order: defaults, ``--config`` file,
``--preset``, then the options given. The same command runs on one device or many::

    pstudio-train --data pairs.json --preset personal --output-dir runs/me
    accelerate launch -m training --data user/my-prefs --preset full --output-dir runs/full
    pstudio-train --config runs/me/train_config.json      # resume an interrupted run
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from typing import get_type_hints

from training.config import PRESETS, ConfigError, TrainConfig, apply_preset

EXIT_BAD_INPUT = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pstudio-train",
        description="Fine-tune JoyQuality (or any SigLIP checkpoint) on pairwise preferences.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--config", help="a saved train_config.json (or its run folder)")
    parser.add_argument("--preset", choices=sorted(PRESETS), help="start from a preset")
    parser.add_argument(
        "--check", action="store_true", help="read the data and model, print a summary, exit"
    )
    hints = get_type_hints(TrainConfig)
    defaults = TrainConfig()
    for f in dataclasses.fields(TrainConfig):
        if f.name == "preset":
            continue
        flag = "--" + f.name.replace("_", "-")
        kind = hints[f.name]
        extra = {"choices": f.metadata["choices"]} if "choices" in f.metadata else {}
        help_text = f"{f.metadata['help']} (default: {getattr(defaults, f.name)!r})"
        if kind is bool:
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction,
                                default=argparse.SUPPRESS, help=help_text)  # fmt: skip
        else:
            parser.add_argument(flag, dest=f.name, type=kind, default=argparse.SUPPRESS,
                                help=help_text, **extra)  # fmt: skip
    return parser


def resolve_config(args: argparse.Namespace) -> TrainConfig:
    """Defaults, then the --config file, then --preset, then the explicit options."""
    values = vars(args).copy()
    source = values.pop("config", None)
    config = TrainConfig.load(source) if source else TrainConfig()
    preset = values.pop("preset", None)
    values.pop("check", None)
    if preset:
        config = apply_preset(config, preset)
    return dataclasses.replace(config, **values).validate()


def _check(config: TrainConfig) -> dict:
    from training.sources import load_base_model, load_data

    data = load_data(config).check()
    model = load_base_model(config)
    return {"data": data.summary(), "image_size": model.image_size, "config": config.to_dict()}


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 done, 2 bad input, 3 stopped early)."""
    from model.checkpoint import ModelUnavailableError, NotSiglipCheckpointError
    from training.data import DataError
    from training.loop import RunError, train

    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    bad_input = (ConfigError, DataError, ModelUnavailableError, NotSiglipCheckpointError)
    try:
        config = resolve_config(args)
        if args.check:
            print(json.dumps(_check(config), indent=1))
            return 0
        result = train(config)
    except (*bad_input, RunError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    from accelerate import PartialState

    if not PartialState().is_main_process:
        return 3 if result.stopped else 0
    summary = {
        "final_dir": str(result.final_dir) if result.final_dir else None,
        "stopped": result.stopped,
        "steps": result.steps,
        "samples": result.samples,
        "pairs_per_second": round(result.pairs_per_second, 2),
        "metrics": result.metrics,
    }
    print(json.dumps(summary, indent=1, default=float))
    return 3 if result.stopped else 0


if __name__ == "__main__":
    sys.exit(main())
