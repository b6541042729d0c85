"""The registry's command line: ``python -m service.registry --help``."""

import argparse
import os
import sys
import time
from collections.abc import Callable

from service.contract import parse_version
from service.errors import BadRequest, FashionServeError, InvalidName

from . import Registry
from ._files import dump


def _format_aliases(aliases: dict[str, int]) -> str:
    return ", ".join(f"{alias} -> {target}" for alias, target in sorted(aliases.items())) or "none"


def _cmd_list(registry: Registry, args: argparse.Namespace) -> int:
    models = registry.models()
    if not models:
        print(f"no models in {registry.root}")
    for name in models:
        versions = ", ".join(map(str, registry.versions(name)))
        print(f"{name}  versions: {versions}  aliases: {_format_aliases(registry.aliases(name))}")
    return 0


def _cmd_show(registry: Registry, args: argparse.Namespace) -> int:
    name, has_version, version = args.target.partition(":")
    if has_version:
        print(dump(registry.card(name, parse_version(version))), end="")
        return 0
    print(f"model: {name}")
    print(f"versions: {', '.join(map(str, registry.versions(name)))}")
    print(f"aliases: {_format_aliases(registry.aliases(name))}")
    for alias, earlier in sorted(registry.alias_history(name).items()):
        print(f"earlier targets of {alias}: {', '.join(map(str, earlier))}")
    for alias, canary in sorted(registry.canaries(name).items()):
        print(f"canary of {alias}: version {canary['version']} at {canary['weight']}%")
    for alias, shadow in sorted(registry.shadows(name).items()):
        print(f"shadow of {alias}: version {shadow}")
    return 0


def _verify(data: bytes) -> None:
    """The service's rule: a version loads in onnxruntime and honours the contract (on CPU)."""
    # Imported here: list, show and verify run without onnxruntime's start-up cost.
    from service.loader import check_model

    check_model(data)


def _cmd_promote(registry: Registry, args: argparse.Namespace) -> int:
    version = parse_version(args.version)
    previous = registry.aliases(args.name).get(args.alias)
    if args.gate:
        # Imported here only: the gate renders photos and reads the test set; nothing else in
        # the service needs it, and the serving image does not ship it.
        try:
            from evaluation.gate import gated_promote, load_benchmark
        except ImportError as exc:
            raise BadRequest(
                f"--gate needs the project's evaluation and training packages ({exc}); "
                "run it from a checkout or the train image"
            ) from exc

        gated_promote(
            registry, args.name, version, args.alias,
            lambda: load_benchmark(photo_count=args.gate_photos), verify=_verify,
        )  # fmt: skip
    else:
        previous = registry.set_alias(args.name, args.alias, version, verify=_verify)
    if previous is None:
        change = "new alias"
    elif previous == version:
        change = "unchanged"
    else:
        change = f"was {previous}"
    print(f"{args.name}: {args.alias} -> {version} ({change})")
    return 0


def _cmd_rollback(registry: Registry, args: argparse.Namespace) -> int:
    previous, target = registry.rollback(args.name, args.alias, verify=_verify)
    print(f"{args.name}: {args.alias} -> {target} (rolled back from {previous})")
    return 0


def _cmd_canary(registry: Registry, args: argparse.Namespace) -> int:
    if args.end:
        ended = registry.clear_canary(args.name, args.alias, "ended from the command line")
        print(f"{args.name}: canary of {args.alias} ended" if ended else "no canary to end")
        return 0
    if args.version is None or args.weight is None:
        raise BadRequest("give V and --weight W (or --end)")
    version = parse_version(args.version)
    registry.set_canary(args.name, args.alias, version, args.weight, verify=_verify)
    print(f"{args.name}: {args.alias} sends {args.weight}% to version {version}")
    return 0


def _cmd_shadow(registry: Registry, args: argparse.Namespace) -> int:
    if args.end:
        ended = registry.clear_shadow(args.name, args.alias, "stopped from the command line")
        print(f"{args.name}: shadow of {args.alias} stopped" if ended else "no shadow to stop")
        return 0
    if args.version is None:
        raise BadRequest("give V (or --end)")
    version = parse_version(args.version)
    registry.set_shadow(args.name, args.alias, version, verify=_verify)
    print(f"{args.name}: version {version} shadows {args.alias}")
    return 0


def _cmd_rollout(registry: Registry, args: argparse.Namespace) -> int:
    # Imported here: the other commands need neither the journals nor the rollout's rules.
    from service.rollout import RUNNING, Margins, Rollout, parse_interval, parse_steps

    rollout = Rollout(registry, verify=_verify)
    if args.action == "start":
        margins = Margins(
            accuracy=args.accuracy_margin, latency_ratio=args.latency_ratio,
            latency_ms=args.latency_margin_ms, min_feedback=args.min_feedback,
            error_rate=args.error_margin, min_requests=args.min_requests,
            disagreement=args.disagreement, min_compared=args.min_compared,
        )  # fmt: skip
        version, steps = parse_version(args.version), parse_steps(args.steps)
        interval = parse_interval(args.interval)
        state = rollout.start(
            args.name, version, args.alias, steps, interval, margins, shadow=not args.no_shadow
        )
    elif args.action == "step":
        state = rollout.step(args.name)
    elif args.action == "abort":
        state = rollout.abort(args.name)
    elif args.action == "run":
        every = parse_interval(args.every)
        state = rollout.step(args.name)
        while state.get("status") == RUNNING:
            time.sleep(every)  # a poll loop's period, not a wait for a condition
            state = rollout.step(args.name)
    else:
        state = registry.rollout(args.name) or {"status": None}
    print(dump(state), end="")
    return 0


def _cmd_verify(registry: Registry, args: argparse.Namespace) -> int:
    failed = False
    for name in registry.models() if args.name is None else [args.name]:
        problems = registry.verify(name)
        for problem in problems:
            print(f"FAILED {problem}")
        if not problems:
            print(f"OK {name}: {len(registry.versions(name))} version(s) match their cards")
        failed = failed or bool(problems)
    return 1 if failed else 0


_COMMANDS: dict[str, Callable[[Registry, argparse.Namespace], int]] = {
    "list": _cmd_list,
    "show": _cmd_show,
    "promote": _cmd_promote,
    "rollback": _cmd_rollback,
    "canary": _cmd_canary,
    "shadow": _cmd_shadow,
    "rollout": _cmd_rollout,
    "verify": _cmd_verify,
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m service.registry", description="Inspect and manage the model registry."
    )
    parser.add_argument(
        "--root",
        default=os.environ.get("FASHION_MODEL_DIR") or "models",
        help="the registry folder (default: $FASHION_MODEL_DIR, else ./models)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("list", help="list the models with their versions and aliases")
    show = commands.add_parser("show", help="a model's versions and aliases, or a version's card")
    show.add_argument("target", metavar="NAME[:V]")
    promote = commands.add_parser("promote", help="point an alias at a version")
    promote.add_argument("name", metavar="NAME")
    promote.add_argument("version", metavar="V")
    promote.add_argument("--alias", required=True, metavar="A")
    promote.add_argument(
        "--gate",
        action="store_true",
        help="first compare V with the alias's current version on the test set and the photo "
        "set (evaluation/gate.py; needs the Fashion-MNIST files, see $FASHION_MNIST_DIR); "
        "refuse if V is worse on either; record the comparison in V's card",
    )
    promote.add_argument(
        "--gate-photos",
        type=int,
        metavar="N",
        help="photos the gate renders and compares on (default: evaluation.gate.PHOTO_COUNT)",
    )
    rollback = commands.add_parser("rollback", help="point an alias back at its previous target")
    rollback.add_argument("name", metavar="NAME")
    rollback.add_argument("--alias", required=True, metavar="A")
    canary = commands.add_parser(
        "canary", help="send a share of an alias's traffic to a second version, or --end it"
    )
    canary.add_argument("name", metavar="NAME")
    canary.add_argument("version", nargs="?", metavar="V")
    canary.add_argument("--alias", required=True, metavar="A")
    canary.add_argument("--weight", type=int, metavar="W", help="whole percent, 1 to 99")
    canary.add_argument("--end", action="store_true", help="all traffic back to the target")
    shadow = commands.add_parser(
        "shadow", help="let a version answer a copy of an alias's requests, or --end it"
    )
    shadow.add_argument("name", metavar="NAME")
    shadow.add_argument("version", nargs="?", metavar="V")
    shadow.add_argument("--alias", required=True, metavar="A")
    shadow.add_argument("--end", action="store_true", help="stop the alias's shadow")
    rollout = commands.add_parser(
        "rollout", help="step a canary up to a promotion, rolling back when it does worse"
    )
    actions = rollout.add_subparsers(dest="action", required=True, metavar="ACTION")
    start = actions.add_parser("start", help="send the first step's share to V")
    start.add_argument("name", metavar="NAME")
    start.add_argument("version", metavar="V")
    start.add_argument("--alias", default="production", metavar="A")
    start.add_argument("--steps", default="10,50,100", help="rising percents ending at 100")
    start.add_argument("--interval", default="5m", help="time between steps: 30s, 5m, 1h")
    start.add_argument(
        "--accuracy-margin",
        type=float,
        default=0.02,
        metavar="X",
        help="roll back when feedback accuracy is lower than the incumbent's by X",
    )
    start.add_argument(
        "--latency-ratio",
        type=float,
        default=1.5,
        metavar="R",
        help="... or p95 request time over R times the incumbent's",
    )
    start.add_argument(
        "--latency-margin-ms", type=float, default=25.0, metavar="MS", help="... and over it by MS"
    )
    start.add_argument(
        "--min-feedback",
        type=int,
        default=20,
        metavar="N",
        help="feedback reports per version before judging accuracy and stepping",
    )
    start.add_argument(
        "--error-margin",
        type=float,
        default=0.01,
        metavar="X",
        help="roll back when the share of failed requests exceeds the incumbent's by X",
    )
    start.add_argument(
        "--min-requests",
        type=int,
        default=50,
        metavar="N",
        help="requests to the candidate before judging its error rate",
    )
    start.add_argument(
        "--disagreement",
        type=float,
        default=0.15,
        metavar="X",
        help="roll back when the candidate, shadowing the alias, answers more than this share"
        " of images otherwise than the incumbent",
    )
    start.add_argument(
        "--min-compared",
        type=int,
        default=100,
        metavar="N",
        help="images the shadow compares before judging disagreement",
    )
    start.add_argument(
        "--no-shadow",
        action="store_true",
        help="do not let the candidate shadow the alias (no disagreement is measured)",
    )
    for action, text in (
        ("step", "judge the candidate: roll back, or take the next step when due"),
        ("run", "step until the rollout completes or rolls back"),
        ("status", "the rollout's state"),
        ("abort", "stop it; all to the target"),
    ):
        parser_ = actions.add_parser(action, help=text)
        parser_.add_argument("name", metavar="NAME")
        if action == "run":
            parser_.add_argument("--every", default="10s", help="time between steps' checks")
    verify = commands.add_parser("verify", help="check every model.onnx against its card's sha256")
    verify.add_argument("name", nargs="?", metavar="NAME")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the registry command line; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](Registry(args.root), args)
    except (InvalidName, BadRequest) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except FashionServeError as exc:
        print(f"error: {exc} (registry {args.root})", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
