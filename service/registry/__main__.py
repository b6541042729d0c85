"""The registry's command line: ``python -m service.registry --help``."""

import argparse
import os
import sys
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
