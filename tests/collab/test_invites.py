"""Invitation tokens on their own: signature, expiry, kinds and PINs."""

from __future__ import annotations

import time

import jwt
import pytest
from collabkit import FAST_PIN_HASHER, SECRET, STUDY
from voxcast.gateway.collab import Grant, InvalidCommand, PermissionDenied
from voxcast.gateway.collab.invites import AUDIENCE, InviteCodec


@pytest.fixture
def codec():
    return InviteCodec(SECRET, FAST_PIN_HASHER)


def test_a_guest_token_carries_no_pin_and_the_record_its_hash(codec):
    token, record = codec.issue("s1", STUDY, "guest", pin="482916")
    claims = jwt.decode(token, options={"verify_signature": False})
    assert "482916" not in token and "pin" not in claims
    assert record["pin_hash"].startswith("$argon2")
    assert codec.pin_matches(record, "482916")
    assert not codec.pin_matches(record, "000000")
    assert not codec.pin_matches(record, None)
    decoded = codec.decode(token)
    assert (decoded.session_id, decoded.study_uid, decoded.kind) == ("s1", STUDY, "guest")


def test_another_key_an_expired_or_foreign_token_is_refused(codec):
    token, _ = codec.issue("s1", STUDY, "user")
    with pytest.raises(PermissionDenied):
        InviteCodec("another-secret-key-of-enough-length!!").decode(token)
    now = int(time.time())
    claims = {"aud": AUDIENCE, "sid": "s1", "study": STUDY, "kind": "user", "jti": "j", "exp": now - 5}
    with pytest.raises(PermissionDenied) as err:
        codec.decode(jwt.encode(claims, SECRET, algorithm="HS256"))
    assert "expired" in str(err.value)
    # An access token of the gateway (another audience) is not an invitation.
    access = jwt.encode({"sub": "bob", "exp": now + 60}, SECRET, algorithm="HS256")
    with pytest.raises(PermissionDenied):
        codec.decode(access)


@pytest.mark.parametrize(
    ("kind", "pin", "minutes", "field"),
    [
        ("guest", None, 60, "pin"),
        ("guest", "12", 60, "pin"),
        ("guest", "12ab", 60, "pin"),
        ("user", "1234", 60, "pin"),
        ("admin", None, 60, "kind"),
        ("user", None, 0, "minutes"),
    ],
)
def test_bad_invitations_name_the_field(codec, kind, pin, minutes, field):
    with pytest.raises(InvalidCommand) as err:
        codec.issue("s1", STUDY, kind, pin=pin, minutes=minutes)
    assert err.value.field == field


def test_a_grant_opens_only_its_study():
    grant = Grant("s1", STUDY, "guest", "g:1")
    assert grant.allows_study(STUDY)
    assert not grant.allows_study("1.2.840.9")
