"""The serving contract: names, versions, and the version-or-alias rule."""

import re

import pytest

from service.contract import (
    CLASS_NAMES,
    NUM_CLASSES,
    check_target,
    check_version,
    is_version,
    parse_version,
    validate_name,
)
from service.errors import BadRequest, InvalidName


def test_ten_distinct_classes_in_dataset_order():
    assert NUM_CLASSES == len(set(CLASS_NAMES)) == 10
    assert (CLASS_NAMES[0], CLASS_NAMES[9]) == ("T-shirt/top", "Ankle boot")


@pytest.mark.parametrize("name", ["a", "0", "fashion-mnist", "mlp_128.v2", "a" * 64, "1..2"])
def test_valid_names_are_accepted(name):
    assert validate_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["", ".", "..", "/", "a/b", "../etc", "-a", ".hidden", "_a", "A", "Fashion", "a b", "a\n",
     "é", "a" * 65, "a:1", None, 7],
)  # fmt: skip
def test_invalid_names_are_rejected(name):
    with pytest.raises(InvalidName, match="invalid model name"):
        validate_name(name)


@pytest.mark.parametrize(("text", "version"), [("1", 1), ("7", 7), ("120", 120), (None, None)])
def test_canonical_version_texts_parse(text, version):
    assert parse_version(text) == version


@pytest.mark.parametrize("text", ["", "0", "01", "-1", "+1", "1.0", "1 ", "x", "\u0661", "1e3"])
def test_other_version_texts_are_rejected_naming_the_text(text):
    # "\u0661" is an Arabic-Indic one: str.isdigit() says yes, a version folder says no.
    with pytest.raises(BadRequest, match=re.escape(f"invalid version {text!r}")):
        parse_version(text)


@pytest.mark.parametrize(
    ("value", "valid"),
    [(1, True), (42, True), (0, False), (-1, False), (True, False), (1.0, False), ("1", False)],
)
def test_version_numbers_are_positive_ints_never_bools(value, valid):
    assert is_version(value) is valid
    if valid:
        assert check_version(value) == value
    else:
        with pytest.raises(BadRequest, match="positive integers"):
            check_version(value)


@pytest.mark.parametrize(("version", "alias"), [(None, None), (1, None), (None, "production")])
def test_a_version_or_an_alias_is_a_target(version, alias):
    check_target(version, alias)


def test_a_version_and_an_alias_together_are_refused():
    with pytest.raises(BadRequest, match="not both"):
        check_target(1, "production")
