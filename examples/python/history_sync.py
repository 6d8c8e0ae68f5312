#!/usr/bin/env python3
"""Sync a shell-history-like file between machines through a bucket.

    history_sync.py STORE HISTORY_FILE [--state FILE] [--key-file FILE] [--create]

STORE is s3://bucket/prefix?... (credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)
or file:///abs/dir. The vault key comes from BUCKETSYNC_KEY (a recovery code) or the key file,
which is created on first use (together with the vault). The first machine passes --create;
the others join, and a wrong key or store makes them fail instead of starting an empty vault.
Each run stores the file's new lines as records, syncs, and prints the lines other machines
added since the last run.
"""

import argparse
import os
import sys
from pathlib import Path

import bucketsync


def load_key(key_file: Path) -> tuple[bucketsync.VaultKey, bool]:
    """The vault key, and whether it is new."""
    code = os.environ.get("BUCKETSYNC_KEY")
    if code:
        return bucketsync.VaultKey.from_recovery_code(code), False
    if key_file.exists():
        return bucketsync.VaultKey.from_recovery_code(key_file.read_text()), False
    key = bucketsync.VaultKey.generate()
    key_file.write_text(key.recovery_code())
    print(f"new vault; copy {key_file} (its recovery code) to your other machines", file=sys.stderr)
    return key, True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("store")
    parser.add_argument("history", type=Path)
    parser.add_argument("--state", type=Path, default=Path("history_sync.state"))
    parser.add_argument("--key-file", type=Path, default=Path("history_sync.key"))
    parser.add_argument("--create", action="store_true", help="start a new vault (first machine)")
    args = parser.parse_args()

    # ANCHOR: run
    try:
        key, new_key = load_key(args.key_file)
        mode = "create" if args.create or new_key else "join"
        with bucketsync.Vault.open(args.store, key, state=args.state, mode=mode) as vault:
            mine = f"h/{vault.device}/".encode()
            already = len(vault.keys(mine))
            lines = args.history.read_text().splitlines() if args.history.exists() else []
            for number, line in enumerate(lines[already:], start=already):
                vault.put(mine + b"%08d" % number, line)
            report = vault.sync()
            # The report names the keys this sync changed: no need to diff the whole vault.
            new = [k for k in report.changed
                   if k.startswith(b"h/") and not k.startswith(mine) and vault.get(k) is not None]
            print(f"pushed {report.pushed} line(s), pulled {report.pulled}; {report.requests} request(s)")
            print(f"{len(new)} new line(s) from other machines:")
            for k in new:
                print("  " + vault.get(k).decode(errors="replace"))
    except bucketsync.Error as e:
        print(f"history_sync: {e.category}: {e}", file=sys.stderr)
        return 1
    # ANCHOR_END: run
    return 0


if __name__ == "__main__":
    sys.exit(main())
