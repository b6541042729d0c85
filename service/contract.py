"""The serving contract: classes, image side, tensor names, and the name and version rules.

Training, the registry, the runtime and every protocol adapter import these; none restates them.
"""

import re
from typing import TypeGuard, overload

from service.errors import BadRequest, InvalidName

# The ten Fashion-MNIST classes in class-id order: the network's output rows follow it.
CLASS_NAMES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
NUM_CLASSES = len(CLASS_NAMES)
IMAGE_SIDE = 28

# The ONNX graph takes `image` float32 [N,28,28] in 0..1 and gives `probabilities` float32
# [N,10] (softmax inside the graph, rows sum to 1).
INPUT_NAME = "image"
OUTPUT_NAME = "probabilities"
# A version that judges its inputs adds `novelty` float32 [N] (higher: less like its training
# data); its card's "novelty" entry holds the threshold above which an answer is flagged.
NOVELTY_NAME = "novelty"

# Model, alias and file names: safe as one path segment, never "..", "/" or empty.
NAME_PATTERN = r"[a-z0-9][a-z0-9._-]{0,63}"
# An alias starts with a letter, so none ("0", "1e3") can be mistaken for a version number.
ALIAS_PATTERN = r"[a-z][a-z0-9._-]{0,63}"
# Only canonical decimal numbers are versions, so "01" or "-1" can never alias a real folder.
VERSION_PATTERN = r"[1-9][0-9]*"
DEFAULT_ALIAS = "production"

_NAME = re.compile(NAME_PATTERN)
_ALIAS = re.compile(ALIAS_PATTERN)
_VERSION = re.compile(VERSION_PATTERN)


def is_name(text: object) -> bool:
    """True if text is a valid model, alias or file name."""
    return isinstance(text, str) and _NAME.fullmatch(text) is not None


def validate_name(name: str, what: str = "model") -> str:
    """Return ``name`` if it is a valid model/alias/file name, else raise InvalidName."""
    if not is_name(name):
        raise InvalidName(
            f"invalid {what} name {name!r:.80}: use 1 to 64 characters from a-z, 0-9, '.', '_',"
            " '-', starting with a letter or digit"
        )
    return name


def validate_alias(alias: str) -> str:
    """Return ``alias`` if it is a valid alias name (a name starting with a letter)."""
    if not (isinstance(alias, str) and _ALIAS.fullmatch(alias)):
        raise InvalidName(
            f"invalid alias name {alias!r:.80}: use 1 to 64 characters from a-z, 0-9, '.', '_',"
            " '-', starting with a letter"
        )
    return alias


def is_version_text(text: str) -> bool:
    """True if text spells a version the canonical way (a folder name, a URL segment)."""
    return _VERSION.fullmatch(text) is not None


def is_version(value: object) -> TypeGuard[int]:
    """True for a version number: a positive int (never a bool)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def check_version(value: object) -> int:
    """Return ``value`` if it is a version number, else raise BadRequest."""
    if not is_version(value):
        raise BadRequest(f"invalid version {value!r:.80}: versions are positive integers")
    return value


@overload
def parse_version(text: str, what: str = "version") -> int: ...
@overload
def parse_version(text: str | None, what: str = "version") -> int | None: ...
def parse_version(text: str | None, what: str = "version") -> int | None:
    """A version from a path, query string or command line; None when absent."""
    if text is None:
        return None
    if not is_version_text(text):
        raise BadRequest(
            f"invalid {what} {text!r:.80}: versions are positive integers (1, 2, 3 ...)"
        )
    return int(text)


def check_target(version: int | None, alias: str | None) -> None:
    """A model answers by version or by alias: BadRequest when both are given."""
    if version is not None and alias is not None:
        raise BadRequest("give either a version or an alias, not both")
