"""The app's session id sealed into a Curfew record (AES-GCM under an HKDF-derived key): it
opens only under the key, for the record it was sealed for, and never shows the id."""

import base64

import pytest

from curfew.sessions.identity import AppIdSeal, SealError, SessionKeyError

KEY = b"unit-test-session-key-0123456789"
SID = "ab" * 32
APP_ID = "s3cr3t-app-session-id-0123456789"


def test_a_sealed_id_opens_to_the_id_and_holds_none_of_it() -> None:
    seal = AppIdSeal(KEY)
    sealed = seal.seal(SID, APP_ID)
    assert seal.open(SID, sealed) == APP_ID
    assert sealed.isascii()
    raw = base64.urlsafe_b64decode(sealed[2:])
    for form in (APP_ID, APP_ID.upper(), APP_ID.encode().hex()):
        assert form not in sealed
        assert form.encode() not in raw


def test_the_same_id_seals_differently_each_time() -> None:
    seal = AppIdSeal(KEY)
    assert seal.seal(SID, APP_ID) != seal.seal(SID, APP_ID)


def test_another_key_does_not_open_it() -> None:
    sealed = AppIdSeal(KEY).seal(SID, APP_ID)
    with pytest.raises(SealError):
        AppIdSeal(KEY + b"!").open(SID, sealed)


def test_a_seal_moved_to_another_record_does_not_open() -> None:
    sealed = AppIdSeal(KEY).seal(SID, APP_ID)
    with pytest.raises(SealError):
        AppIdSeal(KEY).open("cd" * 32, sealed)


@pytest.mark.parametrize("position", [2, 10, 20, -3])
def test_any_changed_character_is_refused(position: int) -> None:
    seal = AppIdSeal(KEY)
    sealed = seal.seal(SID, APP_ID)
    swapped = "A" if sealed[position] != "A" else "B"
    tampered = sealed[:position] + swapped + sealed[position + 1:]
    assert tampered != sealed
    with pytest.raises(SealError):
        seal.open(SID, tampered)


@pytest.mark.parametrize("hostile", [
    "", "1.", "2.AAAA", "1.!!!!", "1." + "A" * 8, "1.\u00e9\u00e9\u00e9\u00e9", APP_ID,
    "1." + base64.urlsafe_b64encode(b"\0" * 64).decode(),
])
def test_values_that_are_no_seal_raise_seal_error_only(hostile: str) -> None:
    with pytest.raises(SealError) as raised:
        AppIdSeal(KEY).open(SID, hostile)
    assert hostile[2:] not in str(raised.value) or len(hostile) <= 2


def test_a_short_key_is_refused() -> None:
    with pytest.raises(SessionKeyError):
        AppIdSeal(b"short")
