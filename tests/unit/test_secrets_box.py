"""Sealing provider secrets: round trips, rotation, and every way a sealed value must not open."""

from __future__ import annotations

import base64

import pytest

from paycore.provider_credentials.service import mask
from paycore.secrets_box import SealError, SecretsBox, SecretsKeyError, new_key_line, parse_keyring

OLD = new_key_line("old")
NEW = new_key_line("new")
CONTEXT = b"provider-credentials\x1ften_1\x1fstripe\x1ftest"


def test_round_trip() -> None:
    box = SecretsBox.from_setting(NEW)
    sealed = box.seal(b'{"secret_key":"sk_test_123"}', context=CONTEXT)
    assert b"sk_test" not in sealed.encode()
    assert SecretsBox.kid_of(sealed) == "new"
    assert box.open(sealed, context=CONTEXT) == b'{"secret_key":"sk_test_123"}'


def test_two_seals_of_one_value_differ() -> None:
    box = SecretsBox.from_setting(NEW)
    assert box.seal(b"x", context=CONTEXT) != box.seal(b"x", context=CONTEXT)  # fresh nonce each time


def test_rotation_first_key_seals_every_key_opens() -> None:
    sealed_before = SecretsBox.from_setting(OLD).seal(b"v", context=CONTEXT)
    rotated = SecretsBox.from_setting(f"{NEW},{OLD}")
    assert rotated.open(sealed_before, context=CONTEXT) == b"v"
    assert SecretsBox.kid_of(rotated.seal(b"v", context=CONTEXT)) == "new"
    with pytest.raises(SealError, match="does not hold"):
        SecretsBox.from_setting(NEW).open(sealed_before, context=CONTEXT)


def test_a_value_moved_to_another_row_does_not_open() -> None:
    box = SecretsBox.from_setting(NEW)
    sealed = box.seal(b"v", context=CONTEXT)
    with pytest.raises(SealError):
        box.open(sealed, context=CONTEXT.replace(b"ten_1", b"ten_2"))


def test_a_tampered_value_does_not_open() -> None:
    box = SecretsBox.from_setting(NEW)
    version, kid, body = box.seal(b"value", context=CONTEXT).split(".")
    raw = bytearray(base64.urlsafe_b64decode(body))
    raw[-1] ^= 1
    with pytest.raises(SealError):
        box.open(f"{version}.{kid}.{base64.urlsafe_b64encode(bytes(raw)).decode()}", context=CONTEXT)
    with pytest.raises(SealError):
        box.open("not sealed", context=CONTEXT)


@pytest.mark.parametrize(
    "setting",
    ["", "nokid", "k1:", "k1:c2hvcnQ", "k 1:" + "A" * 43, f"{NEW},{NEW}", "k1:!!!notbase64!!!"],
    # fixed ids: NEW is random, and parallel workers must collect the same names
    ids=["empty", "no-kid", "no-key", "short-key", "space-in-kid", "same-kid-twice", "not-base64"],
)
def test_malformed_keyrings_are_refused_without_echoing_keys(setting: str) -> None:
    with pytest.raises(SecretsKeyError) as refused:
        parse_keyring(setting)
    secret_part = setting.partition(":")[2]
    assert not secret_part or secret_part not in str(refused.value)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("sk_test_0123456789abcdefghij4242", "sk_test_…4242"),
        ("whsec_short_1234", "…1234"),  # 16: the last four only
        ("abc_defghijk", "…"),  # short: nothing
    ],
)
def test_masks_leave_most_of_a_secret_unseen(value: str, shown: str) -> None:
    assert mask(value) == shown
