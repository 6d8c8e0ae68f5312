"""Where a home's keys go: a shared vault on another service (another server, accepting only
its own key, behind a tap that keeps every byte sent to it), accepted by homes whose keys were
given and whose keys are only in the environment. The other server must never see the home's
key id; with the vault's own credentials passed, the accept works and reads."""

import pytest

import bucketsync
from bucketsync import Vault, VaultKey

from conftest import ACCESS_KEY, SECRET_KEY


def test_a_homes_keys_never_reach_a_store_an_invitation_names(seaweed, credentials, other_service,
                                                              tmp_path, monkeypatch):
    endpoint, theirs, seen = other_service
    bucket = seaweed.bucket("keys")
    trips = f"s3://trips/v/?endpoint={endpoint}&path_style=true"
    alice = Vault.create(seaweed.store(bucket, "alice/"), VaultKey.generate(), credentials=credentials)
    trip = alice.create_shared(trips, "trip", credentials=theirs)
    trip.put("hotel", "by the lake")
    assert trip.sync().errors == []
    bob_key = VaultKey.generate()
    bob = Vault.create(seaweed.store(bucket, "bob/"), bob_key, credentials=credentials,
                       state=tmp_path / "bob.state")
    invitation = trip.share(bob.identity().public)
    assert b"other-service-key" in seen() and ACCESS_KEY.encode() not in seen()

    # Keys given to the home: the grant's GET goes unsigned, and says which keys to pass.
    with pytest.raises(bucketsync.AuthError, match="pass this vault's own credentials"):
        bob.accept(invitation, state=tmp_path / "trip-1.state")
    assert ACCESS_KEY.encode() not in seen(), "the home's key id reached the other service"

    # Keys only in the environment: the same.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    bob.close()
    bob_env = Vault.open(seaweed.store(bucket, "bob/"), bob_key, state=tmp_path / "bob.state")
    with pytest.raises(bucketsync.AuthError, match="pass this vault's own credentials"):
        bob_env.accept(invitation, state=tmp_path / "trip-2.state")
    assert ACCESS_KEY.encode() not in seen(), "the environment's key id reached the other service"

    # With the vault's own credentials, it is accepted and read.
    accepted = bob_env.accept(invitation, state=tmp_path / "trip-3.state", credentials=theirs)
    assert accepted.sync().errors == []
    assert accepted.get("hotel") == b"by the lake"
    assert ACCESS_KEY.encode() not in seen()
