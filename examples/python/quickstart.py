"""Two devices, one vault, one store: the Python quickstart.

    python examples/python/quickstart.py                  # a local-folder bucket in .quickstart-py/
    python examples/python/quickstart.py 's3://bucket/prefix?endpoint=http://127.0.0.1:8333'

s3:// stores take their credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY. Each
device keeps its state in its own file, and the vault key is kept as a recovery code: run it
again and the devices carry on where they stopped.
"""

import asyncio
import sys
from pathlib import Path

from bucketsync import Vault, VaultKey

work = Path(".quickstart-py")
work.mkdir(exist_ok=True)
store = sys.argv[1] if len(sys.argv) > 1 else f"file://{(work / 'bucket').resolve()}"
code_file = work / "recovery-code.txt"
first_run = not code_file.exists()
if first_run:
    code_file.write_text(VaultKey.generate().recovery_code())
key = VaultKey.from_recovery_code(code_file.read_text())

open_laptop = Vault.create if first_run else Vault.open
with open_laptop(store, key, device="laptop", state=str(work / "laptop.state")) as laptop:
    runs = int(laptop.get("runs") or b"0") + 1
    laptop.put("runs", str(runs))
    laptop.put(f"notes/{runs}", f"written by the laptop on run {runs}")
    report = laptop.sync()
    print(f"laptop: {report}")

with Vault.open(store, key, device="phone", state=str(work / "phone.state")) as phone:
    report = asyncio.run(phone.sync_async())   # the same sync, awaited
    print(f"phone:  {report}")
    for note in phone.keys("notes/"):
        print(f"  {note.decode()} = {phone.get(note).decode()}")
    assert phone.get("runs") == str(runs).encode(), "the phone sees the laptop's latest write"
