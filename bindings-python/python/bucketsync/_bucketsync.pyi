"""Type stubs of the native module; import from ``bucketsync``, not from here."""

from os import PathLike
from typing import AsyncIterator, BinaryIO, Callable, Dict, List, Optional, Protocol, Sequence, TextIO, Tuple, Union

from .errors import Error

Bytes = Union[str, bytes, bytearray, memoryview]
Headers = List[Tuple[str, str]]

FORMAT_VERSION: int

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
    def access_key_id(self) -> str: ...

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

class BackupReport:
    name: str
    files_stored: int
    files_unchanged: int
    deleted: int
    dirs: int
    symlinks: int
    bytes_read: int
    chunks_uploaded: int
    chunks_reused: int
    bytes_sent: int
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
    bytes_sent: int
    errors: List[Tuple[str, Error]]
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
    def closed(self) -> bool: ...
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
        flush_interval: float = 1.0,
        mode: str = "join",
        grace_days: float = 30.0,
        max_clock_skew_days: float = 1.0,
        max_future_days: float = 7.0,
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
        flush_interval: float = 1.0,
        grace_days: float = 30.0,
        max_clock_skew_days: float = 1.0,
        max_future_days: float = 7.0,
    ) -> "Vault": ...
    def devices(self, stale_after_days: float = 30.0) -> List[Dict[str, object]]: ...
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
    def sync_folder(
        self,
        folder: Union[str, PathLike[str]],
        name: Optional[str] = None,
        exclude: Sequence[str] = (),
        progress: Optional[Callable[[str, FileProgress], None]] = None,
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
        interval: float = 30.0,
        on_event: Optional[Callable[[Event], object]] = None,
        debounce: float = 1.0,
        full_sync_interval: float = 600.0,
        background_interval: float = 300.0,
    ) -> None: ...
    def stop_auto_sync(self) -> None: ...
    @property
    def auto_syncing(self) -> bool: ...
    def notify(self, what: str) -> None: ...
    def events(self) -> AsyncIterator[Event]: ...
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
