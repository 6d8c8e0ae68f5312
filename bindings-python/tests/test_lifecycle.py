"""A vault that lives for years: bounded bootstrap, create vs join, device names, the
mass-deletion guard, and what a sync changed."""

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
