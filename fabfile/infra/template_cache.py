"""The compiled-template cache of the command line: Jinja2's FileSystemBytecodeCache in a directory
of the user's own (LBTK_CACHE_DIR, else $XDG_CACHE_HOME/lbtk, else ~/.cache/lbtk; LBTK_CACHE_DIR=""
turns it off). A compiled template is code the next run executes, so the directory must be the
user's alone: created 0700, and refused (no cache, nothing said) when it is a symlink, another
user's, or open to group or others. Jinja2 checks each entry against its template's source, so an
edited template (ours or a templates_dir override) is compiled again."""
from __future__ import annotations

import os
import stat

SUBDIR = "jinja2-sandbox"     # only lbtk's sandboxed environment writes here (entries hold its code)


def cache_dir() -> str | None:
    """The directory to keep compiled templates in, or None when the user turned the cache off."""
    explicit = os.environ.get("LBTK_CACHE_DIR")
    if explicit is not None:
        return os.path.join(explicit, SUBDIR) if explicit else None
    return os.path.join(xdg_cache_home(), "lbtk", SUBDIR)


def xdg_cache_home() -> str:
    """The user's cache directory: $XDG_CACHE_HOME, else ~/.cache (the keeper's socket falls back
    here too)."""
    return os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")


def private_dir(path: str) -> bool:
    """Make `path` (0700) if missing; True only when it is then a real directory of ours alone."""
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid() and not st.st_mode & 0o077


def user_cache():
    """A jinja2 BytecodeCache for render.bytecode_cache_factory, or None (no cache: compile)."""
    path = cache_dir()
    if path is None or not private_dir(path):
        return None
    from jinja2 import FileSystemBytecodeCache
    return FileSystemBytecodeCache(path)
