"""The asyncio side of ``Vault.sync_async``, ``put_file_async``, ``get_file_async``,
``share_async`` and ``accept_async``: the operation runs on a worker thread."""

import asyncio
import functools

from . import _bucketsync


async def _run(method, *args):
    loop = asyncio.get_running_loop()
    cancel = _bucketsync._Cancel()
    done = loop.run_in_executor(None, method, *args, cancel)
    try:
        return await asyncio.shield(done)
    except asyncio.CancelledError:
        # Stop the operation (the cancel wakes it at once) and let it finish stopping before
        # the task ends cancelled, so the vault is free for the next one at once.
        cancel.set()
        try:
            await done
        except BaseException:
            pass
        raise


async def sync_async(vault, progress=None):
    return await _run(vault._sync_until, progress)


async def put_file_async(vault, key, path_or_file, progress=None, pack_size=None):
    return await _run(vault._put_file_until, key, path_or_file, progress, pack_size)


async def get_file_async(vault, key, path_or_file, progress=None):
    return await _run(vault._get_file_until, key, path_or_file, progress)


async def share_async(vault, public, role=None, signer_url=None):
    return await _run(vault._share_until, public, role, signer_url)


async def accept_async(vault, invitation, options):
    # _run passes the cancel event last: bind the keyword arguments first.
    return await _run(functools.partial(vault._accept_until, invitation, **options))


async def events(vault):
    """The background sync's events as an async iterator; see ``Vault.events``."""
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    def hear(event):
        # Called on the background sync's thread: hand the event to this loop.
        try:
            loop.call_soon_threadsafe(queue.put_nowait, event)
        except RuntimeError:
            pass  # the event loop is closed: nobody is listening any more

    listener = vault._add_listener(hear)
    try:
        while True:
            yield await queue.get()
    finally:
        vault._remove_listener(listener)
