"""bucketsync: end-to-end encrypted key-value sync between devices through an S3 bucket.

>>> from bucketsync import Vault, VaultKey
>>> key = VaultKey.generate()
>>> with Vault.open("file:///tmp/bucket", key, state="laptop.state") as vault:
...     vault.put("notes/a", "hello")
...     report = vault.sync()

Keys and values are bytes; ``str`` is accepted and stored as UTF-8. Files of any size go
through ``vault.put_file(key, path_or_file)`` and ``vault.get_file(key, path_or_file)``.
A vault shared with other people is opened through your own vault, your home:
``home.create_shared(store, label)``, ``vault.share(their_public, role)`` and, on their side,
``their_home.accept(invitation)``; ``vault.members()`` lists its people and an owner's
``vault.revoke(fingerprint)`` removes one.
Errors are :class:`bucketsync.Error` subclasses, one per category.
"""

from ._bucketsync import (
    FORMAT_VERSION,
    BackupReport,
    Credentials,
    Event,
    ExportReport,
    FileInfo,
    FileProgress,
    FileReader,
    FileReport,
    PutFilesReport,
    FolderReport,
    Identity,
    ImportReport,
    InvitationInfo,
    Member,
    Progress,
    Request,
    Response,
    RestoreReport,
    SharedVault,
    SyncReport,
    Vault,
    VaultKey,
    VerifyReport,
    invitation_info,
)
from .errors import (
    AccessError,
    AuthError,
    ConfigError,
    ConflictError,
    CorruptError,
    Error,
    LockedError,
    ClockError,
    NetworkError,
    NotFoundError,
    RollbackError,
    ServerError,
    ThrottledError,
    TimeoutError,
    WrongVaultError,
)

__all__ = [
    "FORMAT_VERSION",
    "AccessError",
    "AuthError",
    "BackupReport",
    "ConfigError",
    "ConflictError",
    "CorruptError",
    "Credentials",
    "Error",
    "Event",
    "ExportReport",
    "FileInfo",
    "FileProgress",
    "FileReader",
    "FileReport",
    "PutFilesReport",
    "FolderReport",
    "Identity",
    "ImportReport",
    "InvitationInfo",
    "RestoreReport",
    "LockedError",
    "ClockError",
    "Member",
    "NetworkError",
    "NotFoundError",
    "Progress",
    "Request",
    "Response",
    "RollbackError",
    "ServerError",
    "SharedVault",
    "SyncReport",
    "ThrottledError",
    "TimeoutError",
    "Vault",
    "VaultKey",
    "VerifyReport",
    "WrongVaultError",
    "invitation_info",
]
