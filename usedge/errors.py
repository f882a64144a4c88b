"""The usedge error hierarchy.

Every error says what was wrong and how to fix it. Catch :class:`UsedgeError` to handle all of them;
the CLI turns them into a one-line message and a non-zero exit code instead of a stack trace.
"""
from __future__ import annotations


class UsedgeError(Exception):
    """Base class of every error usedge raises on purpose.

    Args:
        message: what was wrong.
        fix: how to fix it (appended as "Fix: ...").
    """

    def __init__(self, message: str, fix: str | None = None) -> None:
        self.message = message
        self.fix = fix
        super().__init__(f"{message}\nFix: {fix}" if fix else message)


class ConfigError(UsedgeError, ValueError):
    """A name, option or configuration value is not valid."""


class DataError(UsedgeError, ValueError):
    """Input data (a file, a CSV row, an image, a frame) is missing or malformed."""


class SourceError(UsedgeError, IOError):
    """A frame source (DICOM, video, camera, URL) cannot be opened or read."""


class StorageError(UsedgeError, OSError):
    """The disk refused a write: full, over quota, read-only. What the run had written is removed."""


#: the errno values of a disk that cannot take the write (not a bug in the caller's paths)
_STORAGE_ERRNOS = frozenset({28, 122, 30, 27})     # ENOSPC, EDQUOT, EROFS, EFBIG


def storage_error(exc: BaseException, what: str) -> StorageError | None:
    """A :class:`StorageError` for an OSError of a full / read-only disk during ``what``; None for any other."""
    if not isinstance(exc, OSError) or isinstance(exc, UsedgeError) or exc.errno not in _STORAGE_ERRNOS:
        return None
    where = f" ({exc.filename})" if exc.filename else ""
    return StorageError(f"{what} stopped: {exc.strerror or exc}{where}. Nothing half-written was kept.",
                        fix="free space on that disk (or point TMPDIR / --out at another one) and run it again.")


class DependencyError(UsedgeError, ImportError):
    """An optional dependency needed for this feature is not installed."""


def require(module: str, extra: str, feature: str):
    """Import an optional dependency or raise a :class:`DependencyError` naming the extra.

    Args:
        module: the module to import, e.g. ``"torch"``.
        extra: the usedge extra that installs it, e.g. ``"train"``.
        feature: what needs it, for the message.
    """
    import importlib

    try:
        imported = importlib.import_module(module)
    except ImportError as exc:
        raise DependencyError(
            f"{feature} needs the '{module}' package, which is not installed ({exc}).",
            fix=f"pip install 'usedge[{extra}]'",
        ) from exc
    from usedge._logging import tame

    tame(module)  # third-party logs quiet unless `usedge --verbose`
    return imported
