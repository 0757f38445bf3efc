"""Private file modes: everything Orosflow writes under ``var/`` is for its own user only.

The database, Prefect's database, the key file, logs and captured mail hold personal data or
the keys to it. A restrictive umask makes new files 0600 and directories 0700 (children such
as the Prefect server and flow-run processes inherit it); :func:`secure_tree` fixes what an
earlier install left world-readable.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_UMASK = 0o077
FILE_MODE = 0o600
DIR_MODE = 0o700


def restrict_umask() -> int:
    """Make files created from now on (by this process and its children) private; returns the
    previous umask."""
    return os.umask(PRIVATE_UMASK)


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) if needed and make ``path`` itself 0700."""
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    os.chmod(path, DIR_MODE)
    return path


def _chmod(path: Path, mode: int) -> None:
    try:
        if stat.S_IMODE(os.lstat(path).st_mode) != mode:
            os.chmod(path, mode)
    except FileNotFoundError:  # removed meanwhile (e.g. a SQLite journal)
        pass


def secure_tree(root: Path) -> None:
    """Directories 0700 and regular files 0600 under ``root`` (symlinks are not followed).

    ``root`` itself is left alone if it is a shared sticky directory such as ``/tmp``."""
    if not root.is_dir():
        return
    if not os.stat(root).st_mode & stat.S_ISVTX:
        _chmod(root, DIR_MODE)
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        for name in dirnames:
            if not (base / name).is_symlink():
                _chmod(base / name, DIR_MODE)
        for name in filenames:
            path = base / name
            if path.is_file() and not path.is_symlink():
                _chmod(path, FILE_MODE)
