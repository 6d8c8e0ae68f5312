"""The asyncio side of ``Vault.sync_async``: the sync runs on a worker thread."""

import asyncio
import threading


async def sync_async(vault, progress=None):
    loop = asyncio.get_running_loop()
    cancel = threading.Event()
    done = loop.run_in_executor(None, vault._sync_until, progress, cancel)
    try:
        return await asyncio.shield(done)
    except asyncio.CancelledError:
        # Stop the sync (it checks every 50 ms) and let it finish stopping before the task
        # ends cancelled, so the vault is free for the next sync at once.
        cancel.set()
        try:
            await done
        except BaseException:
            pass
        raise
