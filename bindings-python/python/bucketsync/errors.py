"""The exceptions bucketsync raises: one class per error category, all under :class:`Error`."""

import builtins


class Error(Exception):
    """Any bucketsync error. ``category`` names its kind (``"auth"``, ``"corrupt"``, ...)."""

    category = "error"
    """The category's name: "config" for ConfigError, "not-found" for NotFoundError,
    "wrong-vault" for WrongVaultError and so on ("error" for Error itself); Event.category uses
    the same names."""


class ConfigError(Error):
    """Bad input or configuration: a store URL, a recovery code, missing credentials."""

    category = "config"


class AuthError(Error):
    """The store refused the credentials or the signature."""

    category = "auth"


class NotFoundError(Error):
    """A bucket or object that should exist does not."""

    category = "not-found"


class ThrottledError(Error):
    """The store asked to slow down (503 SlowDown); retried, then given up."""

    category = "throttled"


class TimeoutError(Error, builtins.TimeoutError):
    """A request did not finish in time."""

    category = "timeout"


class NetworkError(Error, ConnectionError):
    """The store could not be reached (or a custom transport raised)."""

    category = "network"


class ServerError(Error):
    """The store answered with an error or something that could not be understood."""

    category = "server"


class CorruptError(Error):
    """An object or state failed its checks: damaged, truncated or misplaced."""

    category = "corrupt"


class WrongVaultError(Error):
    """An object or a state file belongs to another vault (another key)."""

    category = "wrong-vault"


class RollbackError(Error):
    """A device's manifest went back to an older version than one already seen."""

    category = "rollback"


class ConflictError(Error):
    """An operation collided with another one, such as a second sync at once."""

    category = "conflict"


class LockedError(Error):
    """The local state is in use by another process or vault object (one writer per device).

    Close the other one, open with ``wait=True`` to wait for it, or use another state file
    (a new device)."""

    category = "locked"


class ClockError(Error):
    """A device's clock runs too far ahead (more than ``max_future_days``): what it wrote since
    is held, not merged, until the clocks agree. Check that device's date and time. Seen in
    ``SyncReport.errors``, naming the device; when it names this device, its clock had run
    ahead and it started over as a new device. Also, with nothing held, a device's manifest
    stamped further ahead of this clock than two clocks may be apart (twice
    ``max_clock_skew_days``): a clock is or was wrong."""

    category = "clock"


class AccessError(Error):
    """Sharing refused: a grant made for another identity, sharing a vault this home does not
    own (or one not opened through its home), or writing to a shared vault with the role
    ``"read"``."""

    category = "access"


BY_CATEGORY = {cls.category: cls for cls in Error.__subclasses__()}
