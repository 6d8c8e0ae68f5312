"""A vault that lives for years: bounded bootstrap, create vs join, device names, the
mass-deletion guard, and what a sync changed."""

import shutil
from pathlib import Path

import pytest

import bucketsync
from bucketsync import Vault, VaultKey


def test_a_new_device_bootstraps_in_a_few_requests_after_3000_pushes(tmp_path):
    store = f"file://{tmp_path / 'bucket'}"
    key = VaultKey.generate()
    shell = Vault.create(store, key, device="shell", state=tmp_path / "shell.state")
    compactions = 0
    for i in range(3000):
        shell.put(f"history/{i:05}", f"command {i}")
        report = shell.sync()
        assert report.pushed == 1
        compactions += report.compacted
    assert compactions >= 10, compactions  # fewer as the checkpoint grows (bytes rule)
    shell.close()

    laptop = Vault.open(store, key, device="new laptop")
    report = laptop.sync()
    assert len(laptop.keys("history/")) == 3000
    assert report.requests <= 20, report
    assert report.requests_by_kind["get-checkpoint"] == 1, report.requests_by_kind
    assert len(report.changed) == 3000 and report.changed[0] == b"history/00000"
    # Up to date: one listing.
    assert laptop.sync().requests == 1


def test_join_needs_the_vault_and_create_needs_it_absent(seaweed, credentials, tmp_path):
    store = seaweed.store(seaweed.bucket("lifecycle"), "vaults/")
    key = VaultKey.generate()
    first = Vault.create(store, key, device="first", credentials=credentials)
    first.sync()

    wrong = Vault.open(store, VaultKey.generate(), credentials=credentials)
    wrong.put("note", "kept locally")
    with pytest.raises(bucketsync.NotFoundError) as missing:
        wrong.sync()
    assert missing.value.category == "not-found"
    assert "no vault for this key" in str(missing.value)
    assert "1 other vault" in str(missing.value), "the prefix holds the first vault"
    assert wrong.unpushed == 1, "nothing lost, nothing pushed"

    again = Vault.create(store, key, credentials=credentials)
    with pytest.raises(bucketsync.ConflictError, match="already exists"):
        again.sync()

    joined = Vault.open(store, key, device="second", credentials=credentials)
    joined.put("from", "second")
    joined.sync()
    first.sync()
    assert first.get("from") == b"second"
    labels = {d["label"]: d for d in first.devices()}
    assert set(labels) == {"first", "second"}
    assert labels["first"]["this_device"] and not labels["second"]["this_device"]
    assert labels["second"]["last_push"] is not None and not labels["second"]["stale"]
    assert first.label == "first"
    with pytest.raises(bucketsync.ConfigError, match="mode must be"):
        Vault.open(store, key, mode="sometimes")


def test_a_mass_deletion_needs_confirming(tmp_path):
    store = f"file://{tmp_path / 'bucket'}"
    key = VaultKey.generate()
    vault = Vault.create(store, key)
    for i in range(30):
        vault.put(f"note/{i}", "text")
    vault.sync()
    for i in range(25):
        vault.delete(f"note/{i}")
    with pytest.raises(bucketsync.ConflictError, match="would delete 25 of the 30 live keys"):
        vault.sync()
    assert vault.unpushed == 25
    vault.confirm_deletions()
    report = vault.sync()
    assert report.pushed == 25
    other = Vault.open(store, key)
    assert len(other.sync().changed) == 30
    assert len(other.keys()) == 5


def test_a_concurrent_loser_is_in_history_on_both_devices(tmp_path):
    import time

    store = f"file://{tmp_path / 'bucket'}"
    key = VaultKey.generate()
    a = Vault.create(store, key, device="a")
    a.sync()
    b = Vault.open(store, key, device="b")
    b.sync()
    b.put("settings/theme", "light")
    time.sleep(0.005)
    a.put("settings/theme", "dark")
    a.sync()
    report = b.sync()
    assert report.conflicts == [b"settings/theme"], report
    a.sync()
    for vault in (a, b):
        versions = vault.history("settings/theme")
        assert [v["value"] for v in versions] == [b"dark", b"light"], versions
        assert versions[0]["device"] == a.device and versions[1]["device"] == b.device
        assert versions[0]["time"] >= versions[1]["time"] > 1.7e9
    assert b.get("settings/theme") == b"dark"


def test_an_offline_device_returns_after_its_tombstone_was_collected(tmp_path):
    """The issue's case: a device goes offline, a key is deleted elsewhere, the tombstone is
    collected, the device returns. It resurrects nothing, and its offline edit survives.
    A grace period of one second (no clock skew: one machine) stands in for 30 days."""
    import time

    store = f"file://{tmp_path / 'bucket'}"
    key = VaultKey.generate()
    grace = dict(grace_days=1 / 86400, max_clock_skew_days=0)
    a = Vault.create(store, key, device="a", **grace)
    a.put("doomed", "old value")
    a.sync()
    b = Vault.open(store, key, device="b", **grace)
    c = Vault.open(store, key, device="c", **grace)
    b.sync()
    c.sync()
    assert c.get("doomed") == b"old value"
    c_id = c.device

    c.put("note", "c's offline edit")  # c goes offline
    b.delete("doomed")
    b.sync()

    # a and b stay in touch while the grace period passes, then keep writing: a checkpoint
    # collects the tombstone once the other device has merged the writer's previous one.
    deadline = time.time() + 1.5
    while time.time() < deadline:
        a.sync()
        b.sync()
        time.sleep(0.05)
    collected = 0
    for i in range(60):
        a.put(f"a/{i}", "x")
        collected += a.sync().collected
        b.put(f"b/{i}", "x")
        collected += b.sync().collected
    assert collected == 1, collected  # by whichever device writes the checkpoints

    fresh = Vault.open(store, key, device="fresh", **grace)
    fresh.sync()
    assert fresh.get("doomed") is None

    report = c.sync()
    assert report.started_over == c_id, report
    assert report.restamped == [b"note"]
    assert c.device != c_id
    assert c.get("doomed") is None, "c's old view did not come back"
    assert c.get("note") == b"c's offline edit"
    for v in (a, b, fresh):
        v.sync()
        assert v.get("doomed") is None
        assert v.get("note") == b"c's offline edit"


FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures"


def test_a_device_whose_date_is_decades_ahead_is_held_and_named(tmp_path):
    # Written by tests/clocks.rs: device aaaa… had its date set to 2106 and wrote one key.
    fixture = FIXTURES / "clock-ahead"
    shutil.copytree(fixture / "bucket", tmp_path / "bucket")
    key = VaultKey.from_recovery_code((fixture / "recovery-code.txt").read_text())
    vault = Vault.open(f"file://{tmp_path / 'bucket'}", key, device="laptop")
    report = vault.sync()
    assert [type(e) for e in report.errors] == [bucketsync.ClockError], report.errors
    error = report.errors[0]
    assert error.category == "clock"
    assert "a" * 32 in str(error) and "days ahead" in str(error)
    # Not merged: it cannot win over what this device writes now, nor move its clock.
    assert vault.get("from-2106") is None
    vault.put("from-2106", "written now")
    vault.sync()
    assert vault.get("from-2106") == b"written now"
