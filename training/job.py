"""What the jobs that register a version share (python -m training, python -m training.quantize):
pointing an alias at the new version, through the gate when asked, and reporting failures."""

import argparse
import sys
from collections.abc import Callable

from service.contract import validate_alias
from service.errors import FashionServeError, RegistryError
from service.loader import check_model
from service.registry import Registry
from training import TrainingError


def add_options(parser: argparse.ArgumentParser) -> None:
    """--promote ALIAS, --gate and --gate-photos N."""
    parser.add_argument("--promote", metavar="ALIAS", help="point ALIAS (e.g. production) at it")
    parser.add_argument(
        "--gate",
        action="store_true",
        help="with --promote: first compare the new version with ALIAS's current one on the "
        "test set, the mirrored test set, the photo set and the real-picture set "
        "(evaluation/gate.py) and leave ALIAS alone if it is worse on any; the comparison "
        "goes into the new version's card",
    )
    parser.add_argument(
        "--gate-photos",
        type=int,
        metavar="N",
        help="photos the gate renders and compares on (default: evaluation.gate.PHOTO_COUNT)",
    )


def check_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """parser.error on options that contradict each other or are out of range."""
    if args.gate_photos is not None and args.gate_photos < 1:
        parser.error("--gate-photos must be at least 1")
    if args.gate and not args.promote:
        parser.error("--gate needs --promote ALIAS")


def validate(args: argparse.Namespace) -> None:
    """ContractError (before any work) when args.promote is not a valid alias name."""
    if args.promote:
        validate_alias(args.promote)


def registered(registry: Registry, name: str, version: int, args: argparse.Namespace) -> None:
    """Say where the new version is; point args.promote at it (the gate may refuse: GateRefused)."""
    print(f"registered {name} version {version} in {registry.root}")
    if not args.promote:
        return
    previous = registry.aliases(name).get(args.promote)
    if args.gate:
        # Imported only now: the gate is TensorFlow-free but renders photos.
        from evaluation.gate import gated_promote, load_benchmark

        gated_promote(
            registry, name, version, args.promote,
            lambda: load_benchmark(args.data_dir, args.gate_photos), verify=check_model,
        )  # fmt: skip
    else:
        registry.set_alias(name, args.promote, version, verify=check_model)
    moved = f" (was {previous})" if previous is not None else ""
    print(f"alias {args.promote} -> {version}{moved}")


def run_reporting(run: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a job: 0, or its expected failure as one `error: ...` line and 1."""
    try:
        run(args)
    except RegistryError as exc:  # its messages name files relative to the registry: say which
        print(f"error: {exc} (registry {args.registry})", file=sys.stderr)
        return 1
    except (TrainingError, FashionServeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
