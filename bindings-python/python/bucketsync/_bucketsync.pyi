"""Type stubs of the native module; import from ``bucketsync``, not from here."""

from os import PathLike
from typing import AsyncIterator, BinaryIO, Callable, Dict, Iterable, List, Optional, Protocol, Sequence, TextIO, Tuple, Union

# Absolute, not relative: scripts/python_reference.py has pdoc read this file as the stubs of
# the bucketsync package itself, which re-exports these names (the API reference's types).
from bucketsync.errors import Error

Bytes = Union[str, bytes, bytearray, memoryview]
Headers = List[Tuple[str, str]]

FORMAT_VERSION: int
"""The bucket format version of this build: it reads this version and every earlier one, down
to version 1."""

class VaultKey:
    """The secret every device of a vault shares."""

    @staticmethod
    def generate() -> "VaultKey": ...
    @staticmethod
    def from_recovery_code(code: str) -> "VaultKey": ...
    def recovery_code(self) -> str: ...
    def wrap_with_passphrase(self, passphrase: str) -> bytes: ...
    @staticmethod
    def unwrap_with_passphrase(wrapped: bytes, passphrase: str) -> "VaultKey": ...
    @property
    def vault_id(self) -> str: ...

class Credentials:
    """S3 credentials, held in memory only."""

    def __init__(self, access_key_id: str, secret_access_key: str, session_token: Optional[str] = None) -> None: ...
    @staticmethod
    def from_env() -> "Credentials": ...
    @property
    def access_key_id(self) -> str:
        """The access key id. The secret access key and the session token cannot be read back."""

class Request:
    """A request for a custom transport to execute as given."""

    method: str
    url: str
    headers: Headers
    body: bytes

class Response:
    """What a custom transport returns."""

    status: int
    headers: Headers
    body: bytes
    def __init__(self, status: int, headers: Sequence[Tuple[str, str]] = ..., body: Bytes = ...) -> None: ...

class Progress:
    requests_done: int
    requests_total: int
    bytes_sent: int
    bytes_received: int

class SyncReport:
    pushed: int
    pulled: int
    requests: int
    requests_by_kind: Dict[str, int]
    bytes_sent: int
    bytes_received: int
    retries: int
    errors: List[Error]
    changed: List[bytes]
    conflicts: List[bytes]
    compacted: bool
    collected: int
    segments_deleted: int
    packs_deleted: int
    packs_repacked: int
    hint_unchanged: bool
    started_over: Optional[str]
    restamped: List[bytes]

class Event:
    """What the background sync tells: kind is "changed", "conflict", "state" or "progress"."""

    kind: str
    keys: List[bytes]
    state: Optional[str]
    category: Optional[str]
    progress: Optional[Progress]

class FileProgress:
    bytes_done: int
    bytes_total: Optional[int]
    requests_done: int
    requests_total: int

class FileReport:
    size: int
    chunks: int
    chunks_uploaded: int
    chunks_reused: int
    packs: int
    bytes_sent: int
    requests: int

class PutFilesReport:
    stored: Dict[bytes, FileReport]
    failed: Dict[bytes, Error]
    chunks_uploaded: int
    chunks_reused: int
    packs: int
    bytes_sent: int
    requests: int

class BackupReport:
    name: str
    files_stored: int
    files_new: int
    files_changed: int
    files_unchanged: int
    deleted: int
    dirs: int
    symlinks: int
    bytes_read: int
    chunks_uploaded: int
    chunks_reused: int
    bytes_sent: int
    packs: int
    requests: int
    errors: List[Tuple[str, Error]]
    seconds: float
    dry_run: bool

class RestoreReport:
    name: str
    files_written: int
    files_unchanged: int
    kept_newer: List[str]
    dirs: int
    symlinks: int
    bytes_written: int
    errors: List[Tuple[str, Error]]
    seconds: float
    dry_run: bool

class FolderReport:
    name: str
    uploaded: int
    downloaded: int
    deleted_here: int
    deleted_there: int
    conflicts: List[str]
    changes: List[Tuple[str, str]]
    bytes_sent: int
    errors: List[Tuple[str, Error]]
    seconds: float
    dry_run: bool

class VerifyReport:
    name: str
    files_ok: int
    files_skipped: int
    bytes_checked: int
    damaged: List[Tuple[str, Error]]
    seconds: float

class ExportReport:
    lines: int
    deleted: int
    history: int
    files: int

class ImportReport:
    lines: int
    imported: int
    deleted: int
    unchanged: int
    older: int
    history: int

class FileInfo:
    size: int
    chunks: int
    packs: int
    content_hash: str

class FileReader:
    """A file of the vault opened for reading at any offset (Vault.open_file)."""

    @property
    def size(self) -> int: ...
    @property
    def closed(self) -> bool:
        """Whether the reader is closed (close(), or the end of its with block)."""
    def read(self, size: Optional[int] = None) -> bytes: ...
    def readinto(self, buffer: Union[bytearray, memoryview]) -> int: ...
    def seek(self, offset: int, whence: int = 0) -> int: ...
    def tell(self) -> int: ...
    def readable(self) -> bool: ...
    def seekable(self) -> bool: ...
    def writable(self) -> bool: ...
    def close(self) -> None: ...
    def __enter__(self) -> "FileReader": ...
    def __exit__(self, *args: object) -> bool: ...

class Identity:
    """A person's identity: the same on every device of their home, derived from its key.
    Equal identities compare equal and hash alike; the repr shows the fingerprint only."""

    @property
    def public(self) -> str:
        """The public identity as text ("bsid1…"): give it to whoever shares a vault with you."""
    @property
    def fingerprint(self) -> str:
        """Its short fingerprint ("21ZV-CDAN-2NX4-6JE3"): compare it with the other person
        through another channel before sharing or accepting."""

class SharedVault:
    """A vault this home made or accepted (Vault.shared()); open it with
    ``home.open_shared(label)``."""

    label: str
    """The home's name for it, unique in the home ("emma (2)" for an accepted vault whose label
    the home had already)."""
    store: str
    """Its store URL."""
    role: str
    """What this person may do in it: "read", "write" or "owner"."""
    granted_by: Optional[str]
    """The fingerprint of the person who granted it; None for a vault this home made."""
    since: float
    """When it was made or accepted, in seconds since the epoch."""

class Member:
    """A person of a shared vault (Vault.members()), as the member statements this device has
    read say; the repr shows the fingerprint, role and signer only."""

    fingerprint: str
    """Their fingerprint ("21ZV-CDAN-2NX4-6JE3"): what Vault.revoke takes."""
    public: str
    """Their public identity as text ("bsid1…")."""
    role: str
    """"read", "write" or "owner"; "revoked" when they are no longer a member."""
    since: float
    """Since when (the deciding statement's time), in seconds since the epoch."""
    granted_by: str
    """The fingerprint of who signed the deciding statement (granted the role, or revoked
    them; the founder for the founder)."""
    may_write: bool
    """Whether their writes count for the vault's readers (role "write" or "owner")."""
    pins: List[Tuple[str, int]]
    """For a revoked member: (device id, segments) of each of their devices, whose writes count
    up to that many segments and no further; empty otherwise."""

class InvitationInfo:
    """What an invitation says (``invitation_info(text)``), read without any request. None of
    it is verified yet: pass ``accept`` the granter's fingerprint as they told it to you."""

    store: str
    """The shared vault's store URL (checked against the grant's signature by accept)."""
    vault_id: str
    """The shared vault's id (32 hex digits)."""
    granted_by: str
    """The fingerprint of who the invitation says granted it."""
    signer: Optional[str]
    """The /sign URL of the signer to reach the store through, if one is named. Not signed."""

def invitation_info(invitation: str) -> InvitationInfo:
    """Reads an invitation ("bsinv1…") without any request. ConfigError for other text."""

class _Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...

class _Writable(Protocol):
    def write(self, data: bytes, /) -> object: ...

class _TextReadable(Protocol):
    def read(self, /) -> Union[str, bytes]: ...

class _TextWritable(Protocol):
    def write(self, data: str, /) -> object: ...

Transport = Callable[[Request], Union[Response, Tuple[int, Headers, bytes]]]

class Vault:
    """One device's replica of a vault."""

    @staticmethod
    def open(
        store: str,
        key: VaultKey,
        device: Optional[str] = None,
        state: Optional[Union[str, "PathLike[str]"]] = None,
        credentials: Optional[Credentials] = None,
        transport: Optional[Transport] = None,
        wait: bool = False,
        flush_interval: Optional[float] = None,
        mode: str = "join",
        grace_days: Optional[float] = None,
        max_clock_skew_days: Optional[float] = None,
        max_future_days: Optional[float] = None,
        stall_timeout: Optional[float] = None,
        request_timeout: Optional[float] = None,
    ) -> "Vault": ...
    @staticmethod
    def create(
        store: str,
        key: VaultKey,
        device: Optional[str] = None,
        state: Optional[Union[str, "PathLike[str]"]] = None,
        credentials: Optional[Credentials] = None,
        transport: Optional[Transport] = None,
        wait: bool = False,
        flush_interval: Optional[float] = None,
        grace_days: Optional[float] = None,
        max_clock_skew_days: Optional[float] = None,
        max_future_days: Optional[float] = None,
        stall_timeout: Optional[float] = None,
        request_timeout: Optional[float] = None,
    ) -> "Vault": ...
    def devices(self, stale_after_days: Optional[float] = None) -> List[Dict[str, object]]: ...
    def retire(self, device_id: str) -> None: ...
    def confirm_deletions(self) -> None: ...
    def history(self, key: Bytes) -> List[Dict[str, object]]: ...
    def set_mass_deletion_limit(self, percent: Optional[int]) -> None: ...
    @property
    def label(self) -> str: ...
    def put(self, key: Bytes, value: Bytes) -> None: ...
    def get(self, key: Bytes) -> Optional[bytes]: ...
    def delete(self, key: Bytes) -> None: ...
    def keys(self, prefix: Bytes = ...) -> List[bytes]: ...
    def sync(self, progress: Optional[Callable[[Progress], object]] = None) -> SyncReport: ...
    async def sync_async(
        self, progress: Optional[Callable[[Progress], object]] = None
    ) -> SyncReport: ...
    def put_file(
        self,
        key: Bytes,
        path_or_file: Union[str, "PathLike[str]", BinaryIO, _Readable],
        progress: Optional[Callable[[FileProgress], object]] = None,
        pack_size: Optional[int] = None,
    ) -> FileReport: ...
    def put_files(
        self,
        files: Iterable[Tuple[Bytes, Union[str, "PathLike[str]"]]],
        progress: Optional[Callable[[bytes, FileProgress], object]] = None,
        pack_size: Optional[int] = None,
    ) -> PutFilesReport: ...
    def get_file(
        self,
        key: Bytes,
        path_or_file: Union[str, "PathLike[str]", BinaryIO, _Writable],
        progress: Optional[Callable[[FileProgress], object]] = None,
    ) -> None: ...
    def file_info(self, key: Bytes) -> Optional[FileInfo]: ...
    def open_file(self, key: Bytes) -> FileReader: ...
    def backup(
        self,
        folder: Union[str, PathLike[str]],
        name: Optional[str] = None,
        exclude: Sequence[str] = (),
        include_hidden: bool = False,
        dry_run: bool = False,
        delete: bool = False,
        progress: Optional[Callable[[str, FileProgress], None]] = None,
    ) -> BackupReport: ...
    def restore(
        self,
        to: Union[str, PathLike[str]],
        name: Optional[str] = None,
        at: Optional[object] = None,
        dry_run: bool = False,
        force: bool = False,
        progress: Optional[Callable[[str, FileProgress], None]] = None,
        only: Sequence[str] = (),
        synced_folder: bool = False,
    ) -> RestoreReport: ...
    def export_records(
        self,
        path_or_file: Union[str, "PathLike[str]", BinaryIO, TextIO, _Writable, _TextWritable],
        history: bool = False,
    ) -> ExportReport: ...
    def import_records(
        self,
        path_or_file: Union[str, "PathLike[str]", BinaryIO, TextIO, _Readable, _TextReadable],
    ) -> ImportReport: ...
    def backups(self) -> List[str]: ...
    def verify(
        self,
        name: Optional[str] = None,
        synced_folder: bool = False,
        sample_percent: int = 100,
        progress: Optional[Callable[[str, FileProgress], None]] = None,
    ) -> VerifyReport: ...
    def sync_folder(
        self,
        folder: Union[str, PathLike[str]],
        name: Optional[str] = None,
        exclude: Sequence[str] = (),
        progress: Optional[Callable[[str, FileProgress], None]] = None,
        dry_run: bool = False,
    ) -> FolderReport: ...
    async def put_file_async(
        self,
        key: Bytes,
        path_or_file: Union[str, "PathLike[str]", BinaryIO, _Readable],
        progress: Optional[Callable[[FileProgress], object]] = None,
        pack_size: Optional[int] = None,
    ) -> FileReport: ...
    async def get_file_async(
        self,
        key: Bytes,
        path_or_file: Union[str, "PathLike[str]", BinaryIO, _Writable],
        progress: Optional[Callable[[FileProgress], object]] = None,
    ) -> None: ...
    def start_auto_sync(
        self,
        interval: Optional[float] = None,
        on_event: Optional[Callable[[Event], object]] = None,
        debounce: Optional[float] = None,
        full_sync_interval: Optional[float] = None,
        background_interval: Optional[float] = None,
    ) -> None: ...
    def stop_auto_sync(self) -> None: ...
    @property
    def auto_syncing(self) -> bool: ...
    def notify(self, what: str) -> None: ...
    def events(self) -> AsyncIterator[Event]: ...
    def identity(self) -> Identity:
        """The identity of the person whose home this vault is (any vault can be a home); the
        same on every device of the home."""
    def shared(self) -> List[SharedVault]:
        """The vaults this home made or accepted, sorted by label, as known here (sync the home
        to see those its other devices made or accepted)."""
    def create_shared(
        self,
        store: str,
        label: str,
        *,
        device: Optional[str] = None,
        state: Optional[Union[str, "PathLike[str]"]] = None,
        credentials: Optional[Credentials] = None,
        transport: Optional[Transport] = None,
        wait: bool = False,
        flush_interval: Optional[float] = None,
        grace_days: Optional[float] = None,
        max_clock_skew_days: Optional[float] = None,
        max_future_days: Optional[float] = None,
    ) -> "Vault":
        """Makes a new vault to share in ``store``, kept in this home as ``label`` with the role
        "owner" (sync the home so its other devices see it), and returns it opened in create
        mode. The other arguments are Vault.open's, for the shared vault (its own state file;
        transport and deadlines default to the home's). Credentials: the home's (given, or
        from the AWS_* environment) serve only a store on the home's own service (the same
        endpoint and region); a store elsewhere gets only the ``credentials`` passed here, else
        its requests go unsigned and raise AuthError saying so. The returned vault keeps the
        home open for share(). ConfigError for a bad label or store URL, or a label the home
        has already."""
    def open_shared(
        self,
        label: str,
        *,
        device: Optional[str] = None,
        state: Optional[Union[str, "PathLike[str]"]] = None,
        credentials: Optional[Credentials] = None,
        transport: Optional[Transport] = None,
        wait: bool = False,
        flush_interval: Optional[float] = None,
        grace_days: Optional[float] = None,
        max_clock_skew_days: Optional[float] = None,
        max_future_days: Optional[float] = None,
    ) -> "Vault":
        """Opens the vault this home knows as ``label`` (see shared()) in join mode, with the
        home's role in it (with "read", its writes raise AccessError). Arguments as for
        create_shared. ConfigError when the home has no such label."""
    def share(self, public: str, role: Optional[str] = None, signer_url: Optional[str] = None) -> str:
        """Grants this vault to the person whose public identity ("bsid1…") is ``public`` with
        ``role`` ("read", "write" or "owner"): one PUT into the vault's store. Returns the
        invitation ("bsinv1…") to send them. ``signer_url``: the /sign URL of a ``bucketsync
        signer`` through which they reach the store (give them a member token too); the
        invitation names it, unsigned, so send it over a channel you trust. AccessError when
        this vault was not opened through its home (create_shared, open_shared or accept) or
        the home does not own it; ConfigError for a bad role, public identity or signer URL."""
    async def share_async(
        self, public: str, role: Optional[str] = None, signer_url: Optional[str] = None
    ) -> str:
        """share() on a worker thread, for asyncio apps; cancelling the task stops it."""
    def accept(
        self,
        invitation: str,
        *,
        granted_by: Optional[str] = None,
        device: Optional[str] = None,
        state: Optional[Union[str, "PathLike[str]"]] = None,
        credentials: Optional[Credentials] = None,
        transport: Optional[Transport] = None,
        wait: bool = False,
        flush_interval: Optional[float] = None,
        grace_days: Optional[float] = None,
        max_clock_skew_days: Optional[float] = None,
        max_future_days: Optional[float] = None,
    ) -> "Vault":
        """Accepts an invitation with this home's identity: reads its grant (one GET in the
        invitation's store, signed as create_shared says: the home's credentials only on the
        home's own service, never on one an invitation names), keeps the vault in this home (sync the
        home so its other devices see it) and returns it opened in join mode. Other arguments
        as for create_shared. ``granted_by``: the granter's fingerprint as they told it out of
        band; an invitation from anyone else raises AccessError before anything is fetched.
        ConfigError for a text that is not an invitation, AccessError when it was made for
        another identity or another granter (or on a shared vault: only a home accepts),
        NotFoundError when its grant is gone."""
    async def accept_async(
        self,
        invitation: str,
        *,
        granted_by: Optional[str] = None,
        device: Optional[str] = None,
        state: Optional[Union[str, "PathLike[str]"]] = None,
        credentials: Optional[Credentials] = None,
        transport: Optional[Transport] = None,
        wait: bool = False,
        flush_interval: Optional[float] = None,
        grace_days: Optional[float] = None,
        max_clock_skew_days: Optional[float] = None,
        max_future_days: Optional[float] = None,
    ) -> "Vault":
        """accept() on a worker thread, for asyncio apps; cancelling the task stops it."""
    def members(self) -> List[Member]:
        """The people of this shared vault, sorted by fingerprint, as the member statements
        this device has read say (sync to see what other owners decided); revoked people stay
        listed with the role "revoked". Empty for a vault that is not shared."""
    def revoke(self, fingerprint: str) -> Member:
        """Revokes the member whose fingerprint is ``fingerprint`` and returns the Member as
        they were before. Nothing is sent: the next sync publishes the revocation. Readers
        then count their writes only up to what this device had merged of them (sync before
        revoking), and their own syncs raise AccessError. A new key generation starts: the next
        sync seals it to every member left and re-seals the records under it; they keep what
        they could read. AccessError when this person is not an owner (or
        the vault is not shared); ConfigError for a fingerprint no member has, the founder's
        or one's own."""
    def save(self) -> None: ...
    def close(self) -> None: ...
    @property
    def device(self) -> str: ...
    @property
    def vault_id(self) -> str: ...
    @property
    def unpushed(self) -> int: ...
    def __enter__(self) -> "Vault": ...
    def __exit__(self, *args: object) -> bool: ...
