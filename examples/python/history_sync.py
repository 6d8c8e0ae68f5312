#!/usr/bin/env python3
"""Sync a shell-history-like file between machines through a bucket.

    history_sync.py STORE HISTORY_FILE [--state FILE] [--key-file FILE]

STORE is s3://bucket/prefix?... (credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)
or file:///abs/dir. The vault key comes from BUCKETSYNC_KEY (a recovery code) or the key file,
which is created on first use. Each run stores the file's new lines as records, syncs, and
prints the lines other machines added since the last run.
"""

import argparse
import os
import sys
from pathlib import Path

import bucketsync


def load_key(key_file: Path) -> bucketsync.VaultKey:
    code = os.environ.get("BUCKETSYNC_KEY")
    if code:
        return bucketsync.VaultKey.from_recovery_code(code)
    if key_file.exists():
        return bucketsync.VaultKey.from_recovery_code(key_file.read_text())
    key = bucketsync.VaultKey.generate()
    key_file.write_text(key.recovery_code())
    print(f"new vault; copy {key_file} (its recovery code) to your other machines", file=sys.stderr)
    return key


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("store")
    parser.add_argument("history", type=Path)
    parser.add_argument("--state", type=Path, default=Path("history_sync.state"))
    parser.add_argument("--key-file", type=Path, default=Path("history_sync.key"))
    args = parser.parse_args()

    try:
        with bucketsync.Vault.open(args.store, load_key(args.key_file), state=args.state) as vault:
            mine = f"h/{vault.device}/".encode()
            already = len(vault.keys(mine))
            lines = args.history.read_text().splitlines() if args.history.exists() else []
            for number, line in enumerate(lines[already:], start=already):
                vault.put(mine + b"%08d" % number, line)
            before = set(vault.keys(b"h/"))
            report = vault.sync()
            new = sorted(k for k in set(vault.keys(b"h/")) - before if not k.startswith(mine))
            print(f"pushed {report.pushed} line(s), pulled {report.pulled}; {report.requests} request(s)")
            print(f"{len(new)} new line(s) from other machines:")
            for k in new:
                print("  " + vault.get(k).decode(errors="replace"))
    except bucketsync.Error as e:
        print(f"history_sync: {e.category}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
