"""Sharing with other people: identity, create_shared, share, accept, shared, open_shared,
members, revoke, and the AccessError of what a home may not do."""

import asyncio
import time

import pytest

import bucketsync
from bucketsync import Vault, VaultKey

from test_vault import urllib_transport


def test_alice_shares_emma_with_bob_and_carol_on_seaweed(seaweed, credentials, tmp_path):
    bucket = seaweed.bucket("sharing")
    shared_store = seaweed.store(bucket, "shared/")
    keys = {name: VaultKey.generate() for name in ("alice", "bob", "carol")}

    def home(name, state):
        return Vault.create(seaweed.store(bucket, f"homes/{name}/"), keys[name],
                            state=tmp_path / state, credentials=credentials)

    alice, bob, carol = home("alice", "alice.state"), home("bob", "bob.state"), home("carol", "carol.state")
    before = time.time()
    # ANCHOR: share
    emma = alice.create_shared(shared_store, "emma", state=tmp_path / "alice-emma.state",
                               credentials=credentials)
    emma.put("plan", "from alice")
    assert emma.sync().errors == []
    assert alice.sync().errors == []
    [made] = alice.shared()
    assert (made.label, made.role, made.granted_by) == ("emma", "owner", None)
    assert before - 1 <= made.since <= time.time() + 1
    assert "emma" in repr(made) and "owner" in repr(made)
    with pytest.raises(bucketsync.ConfigError, match="already"):
        alice.create_shared(shared_store, "emma")

    bob_id, carol_id = bob.identity(), carol.identity()
    assert repr(bob_id) == f"Identity(fingerprint='{bob_id.fingerprint}')"
    assert bob_id.public.startswith("bsid1") and bob_id.public not in repr(bob_id)
    for_bob = emma.share(bob_id.public, role="write")
    for_carol = emma.share(carol_id.public)  # read by default
    # ANCHOR_END: share
    assert for_bob.startswith("bsinv1") and for_bob != for_carol
    info = bucketsync.invitation_info(for_bob)
    assert (info.vault_id, info.granted_by, info.signer) == (emma.vault_id, alice.identity().fingerprint, None)
    assert info.store.startswith("s3://") and "InvitationInfo(" in repr(info)
    # An invitation may name a signer to reach the store through: never one carrying
    # credentials (refused before anything is sent).
    through = emma.share(carol_id.public, signer_url="https://signer.example/sign")
    assert bucketsync.invitation_info(through).signer == "https://signer.example/sign"
    with pytest.raises(bucketsync.ConfigError, match="credentials") as refused:
        emma.share(carol_id.public, signer_url="https://carol:secret@signer.example/sign")
    assert "secret" not in str(refused.value)
    with pytest.raises(bucketsync.ConfigError):
        bucketsync.invitation_info("bsinv1 nonsense")

    # An invitation sealed to Bob: Carol cannot open it, and her home keeps nothing.
    with pytest.raises(bucketsync.AccessError) as refused:
        carol.accept(for_bob, credentials=credentials)
    assert refused.value.category == "access"
    assert carol.shared() == []

    started = time.monotonic()
    # ANCHOR: accept
    bob_emma = bob.accept(for_bob, state=tmp_path / "bob-emma.state", credentials=credentials)
    # ANCHOR_END: accept
    assert bob_emma.sync().errors == []
    # The accepted vault has a transport of its own: one whose connections belonged to the
    # home's runtime hung its first sync until a 60 s timeout.
    assert time.monotonic() - started < 30
    assert bob_emma.get("plan") == b"from alice"
    bob_emma.put("reply", "from bob")
    assert bob_emma.sync().errors == []
    [accepted] = bob.shared()
    assert (accepted.label, accepted.role) == ("emma", "write")
    assert accepted.granted_by == alice.identity().fingerprint
    assert accepted.store == made.store

    # Carol reads; this device refuses her writes.
    carol_emma = carol.accept(for_carol, state=tmp_path / "carol-emma.state", credentials=credentials)
    assert carol_emma.sync().errors == []
    assert carol_emma.get("plan") == b"from alice"
    assert carol.shared()[0].role == "read"
    with pytest.raises(bucketsync.AccessError, match="read"):
        carol_emma.put("graffiti", "x")

    # Alice's second device: same home key, a new state. It sees emma after a sync of the home,
    # with the same identity, and reads Bob's write.
    alice_phone = Vault.open(seaweed.store(bucket, "homes/alice/"), keys["alice"],
                             state=tmp_path / "alice-phone.state", credentials=credentials)
    assert alice_phone.identity() == alice.identity()
    assert alice_phone.identity().fingerprint == alice.identity().fingerprint
    assert hash(alice_phone.identity()) == hash(alice.identity())
    assert alice_phone.identity() != bob_id
    assert alice_phone.shared() == []
    assert alice_phone.sync().errors == []
    assert [s.label for s in alice_phone.shared()] == ["emma"]
    phone_emma = alice_phone.open_shared("emma", state=tmp_path / "alice-phone-emma.state",
                                         credentials=credentials)
    assert phone_emma.sync().errors == []
    assert phone_emma.get("reply") == b"from bob"
    # The phone's emma was opened through its home: it may share too.
    assert phone_emma.share(carol_id.public, role="read").startswith("bsinv1")

    # Only an owner shares; only a vault opened through its home can be shared.
    with pytest.raises(bucketsync.AccessError, match="only an owner"):
        bob_emma.share(carol_id.public)
    with pytest.raises(bucketsync.AccessError, match="not opened through its home"):
        alice.share(bob_id.public)
    with pytest.raises(bucketsync.ConfigError, match="admin"):
        emma.share(bob_id.public, role="admin")
    with pytest.raises(bucketsync.ConfigError):
        emma.share("not an identity")
    with pytest.raises(bucketsync.ConfigError):
        bob.accept("not an invitation")
    with pytest.raises(bucketsync.ConfigError, match="no shared vault"):
        alice.open_shared("liam")

    for vault in (emma, bob_emma, carol_emma, phone_emma, alice_phone, alice, bob, carol):
        vault.close()


def test_a_home_with_a_python_transport_lends_it_to_accept_and_open(seaweed, credentials, tmp_path):
    bucket = seaweed.bucket("sharing-transport")
    sent = []

    def transport(request):
        sent.append(request.method)
        return urllib_transport(request)

    alice = Vault.create(seaweed.store(bucket, "alice/"), VaultKey.generate(), credentials=credentials)
    bob = Vault.create(seaweed.store(bucket, "bob/"), VaultKey.generate(), credentials=credentials,
                       transport=transport)
    emma = alice.create_shared(seaweed.store(bucket, "emma/"), "emma", credentials=credentials)
    emma.put("plan", "x")
    emma.sync()
    invitation = emma.share(bob.identity().public, role="read")
    bob_emma = bob.accept(invitation, credentials=credentials)
    assert sent == ["GET"]
    bob_emma.sync()
    assert bob_emma.get("plan") == b"x"
    assert len(sent) > 1
    with pytest.raises(TypeError, match="callable"):
        bob.open_shared("emma", transport=42)


def test_sharing_between_file_stores_with_the_async_variants(tmp_path):
    homes = f"file://{tmp_path / 'homes'}"
    alice = Vault.create(f"{homes}/alice", VaultKey.generate(), state=tmp_path / "alice.state")
    bob = Vault.create(f"{homes}/bob", VaultKey.generate())
    emma = alice.create_shared(f"file://{tmp_path / 'shared'}", "emma")
    emma.put("plan", "from alice")
    emma.sync()

    async def main():
        invitation = await emma.share_async(bob.identity().public, role="write")
        return await bob.accept_async(invitation, state=tmp_path / "bob-emma.state")

    bob_emma = asyncio.run(main())
    bob_emma.sync()
    assert bob_emma.get("plan") == b"from alice"
    assert [(s.label, s.role) for s in bob.shared()] == [("emma", "write")]
    bob_emma.close()
    # The state given to accept is the shared vault's own: open_shared finds it again.
    again = bob.open_shared("emma", state=tmp_path / "bob-emma.state")
    assert again.get("plan") == b"from alice"

    # A second vault labelled emma from someone else gets a number.
    carol = Vault.create(f"{homes}/carol", VaultKey.generate())
    other = carol.create_shared(f"file://{tmp_path / 'shared2'}", "emma")
    other.sync()
    bob.accept(other.share(bob.identity().public))
    assert [s.label for s in bob.shared()] == ["emma", "emma (2)"]


def test_a_shared_vault_is_not_a_home_and_granted_by_is_checked(tmp_path):
    store = f"file://{tmp_path / 'bucket'}"
    alice = Vault.create(store, VaultKey.generate())
    bob = Vault.create(store, VaultKey.generate())
    emma = alice.create_shared(store, "emma")
    for call in (
        lambda: emma.identity(),
        lambda: emma.shared(),
        lambda: emma.create_shared(store, "nested"),
        lambda: emma.open_shared("emma"),
    ):
        with pytest.raises(bucketsync.AccessError, match="not a home"):
            call()
    invitation = emma.share(bob.identity().public, role="write")
    with pytest.raises(bucketsync.AccessError, match="comes from"):
        bob.accept(invitation, granted_by="0000-0000-0000-0000")
    assert bob.shared() == []
    fingerprint = alice.identity().fingerprint.lower()
    accepted = bob.accept(invitation, granted_by=fingerprint)
    assert accepted.get("missing") is None


def test_members_and_revoke_on_seaweed(seaweed, credentials, tmp_path):
    bucket = seaweed.bucket("sharing-members")
    keys = {name: VaultKey.generate() for name in ("alice", "bob", "carol")}

    def home(name):
        return Vault.create(seaweed.store(bucket, f"homes/{name}/"), keys[name],
                            state=tmp_path / f"{name}.state", credentials=credentials)

    alice, bob, carol = home("alice"), home("bob"), home("carol")
    alice_fp, bob_fp, carol_fp = (h.identity().fingerprint for h in (alice, bob, carol))
    before = time.time()
    emma = alice.create_shared(seaweed.store(bucket, "emma/"), "emma",
                               state=tmp_path / "alice-emma.state", credentials=credentials)
    emma.put("plan", "from alice")
    assert emma.sync().errors == []
    bob_emma = bob.accept(emma.share(bob.identity().public, role="write"), granted_by=alice_fp,
                          state=tmp_path / "bob-emma.state", credentials=credentials)
    carol_emma = carol.accept(emma.share(carol.identity().public), granted_by=alice_fp,
                              state=tmp_path / "carol-emma.state", credentials=credentials)
    assert emma.sync().errors == []
    assert bob_emma.sync().errors == []
    assert carol_emma.sync().errors == []
    bob_emma.put("reply", "from bob")
    assert bob_emma.sync().errors == []
    assert emma.sync().errors == []
    assert emma.get("reply") == b"from bob"

    members = emma.members()
    assert all(isinstance(m, bucketsync.Member) for m in members)
    assert [m.fingerprint for m in members] == sorted([alice_fp, bob_fp, carol_fp])
    by_fp = {m.fingerprint: m for m in members}
    assert {fp: m.role for fp, m in by_fp.items()} == {
        alice_fp: "owner", bob_fp: "write", carol_fp: "read"}
    assert {fp: m.may_write for fp, m in by_fp.items()} == {
        alice_fp: True, bob_fp: True, carol_fp: False}
    assert all(m.granted_by == alice_fp and m.pins == [] for m in members)
    assert all(before - 1 <= m.since <= time.time() + 1 for m in members)
    assert by_fp[bob_fp].public == bob.identity().public
    assert repr(by_fp[bob_fp]) == f"Member(fingerprint='{bob_fp}', role='write', granted_by='{alice_fp}')"
    assert bob.identity().public not in repr(members)
    # The members say the same on Bob's side once he has synced.
    assert {m.fingerprint: m.role for m in bob_emma.members()} == {
        alice_fp: "owner", bob_fp: "write", carol_fp: "read"}
    # Not shared: nobody, and nothing to revoke.
    assert alice.members() == []
    with pytest.raises(bucketsync.AccessError, match="not shared"):
        alice.revoke(bob_fp)

    # Only an owner revokes; an unknown fingerprint, the founder or oneself cannot be.
    with pytest.raises(bucketsync.AccessError, match="only an owner") as refused:
        bob_emma.revoke(carol_fp)
    assert refused.value.category == "access"
    with pytest.raises(bucketsync.ConfigError, match="no member") as unknown:
        emma.revoke("0000-0000-0000-0000")
    assert unknown.value.category == "config"
    with pytest.raises(bucketsync.ConfigError, match="founder"):
        emma.revoke(alice_fp)
    assert Vault.revoke.__doc__.startswith("Revokes the member")
    assert "people of this shared vault" in Vault.members.__doc__
    assert "revoked" in bucketsync.Member.role.__doc__

    # Alice revokes Bob (as typed: lower case, spaces): he is returned as he was. Nothing is
    # sent yet: the revocation is local until her next sync.
    was = emma.revoke(bob_fp.lower().replace("-", " "))
    assert (was.fingerprint, was.role, was.may_write, was.pins) == (bob_fp, "write", True, [])
    revoked = {m.fingerprint: m for m in emma.members()}[bob_fp]
    assert (revoked.role, revoked.may_write, revoked.granted_by) == ("revoked", False, alice_fp)
    assert revoked.since >= was.since
    # Pinned at what Alice merged of Bob's device: the one segment with "reply".
    assert revoked.pins == [(bob_emma.device, 1)]
    assert "revoked" in repr(revoked)

    # Bob, not told yet, writes and pushes; once Alice publishes the revocation, every reader
    # ignores that write and says so in its report.
    bob_emma.put("early", "from bob, after the revocation was signed")
    assert bob_emma.sync().errors == []
    report = emma.sync()
    assert [e.category for e in report.errors] == ["access"]
    assert "revoked" in str(report.errors[0]) and bob_fp in str(report.errors[0])
    assert emma.get("early") is None
    assert emma.get("reply") == b"from bob"  # written before the revocation: it still counts
    assert {m.fingerprint: m.role for m in emma.members()}[bob_fp] == "revoked"

    # Bob writes on: his own sync now refuses, and nothing of it reaches the others.
    bob_emma.put("late", "from bob, revoked")
    with pytest.raises(bucketsync.AccessError, match="revoked") as refused:
        bob_emma.sync()
    assert refused.value.category == "access"
    assert {m.fingerprint: m.role for m in bob_emma.members()}[bob_fp] == "revoked"
    with pytest.raises(bucketsync.AccessError, match="only an owner"):
        bob_emma.revoke(carol_fp)
    assert emma.sync().errors == []
    assert emma.get("late") is None and emma.get("early") is None
    # Carol may start from Alice's checkpoint, re-sealed under the new key, which leaves
    # Bob's later writes out: then she never even fetches them.
    report = carol_emma.sync()
    assert all(e.category == "access" for e in report.errors), report.errors
    assert carol_emma.get("late") is None and carol_emma.get("early") is None
    assert carol_emma.get("reply") == b"from bob"
    assert {m.fingerprint: m.role for m in carol_emma.members()}[bob_fp] == "revoked"

    for vault in (emma, bob_emma, carol_emma, alice, bob, carol):
        vault.close()
