"""The inventory's `scripts:` section: the files its commands run (vrrp_script `script`, an
instance's `notify*`; MISC_CHECK's `misc_path` joins through `script_commands`), each either
shipped by lbtk from the repository or declared as already present on the nodes.

    scripts:
      /etc/keepalived/scripts/check_nginx.sh: {source: scripts/check_nginx.sh}   # inventories/scripts/...
      /etc/keepalived/scripts/on_master.sh: {content: "#!/bin/sh\\nlogger master\\n"}
      /usr/local/sbin/site-health: {present: true}                              # the node's own

Pure: the source file is read by the renderer (fabfile/core/render/scripts.py), not here.
"""
from __future__ import annotations

import posixpath
import re
from typing import TYPE_CHECKING

from pydantic import Field, model_validator

from fabfile.model.fields import FieldProblem, Strict, keepalived_word

if TYPE_CHECKING:
    from fabfile.model.schema import Inventory

# Where lbtk ships a script. keepalived's enable_script_security (lbtk writes it whenever scripts
# run) refuses to run a script as root when any component of its path — every directory from / down,
# and the file — is owned by someone else or writable by group or others (a user who can write any
# of them could swap the script for theirs and be root); a sticky directory such as /tmp passes
# keepalived's test but lets any user create the name first. These trees are root's, 0755, on
# every Debian node, and the directories lbtk creates below them are root's 0755 too (deploy's
# mkdir runs as root under umask 022, files go in root-owned, mode 0755).
SHIP_DIRS = ("/etc/keepalived/", "/usr/local/sbin/", "/usr/local/bin/", "/usr/local/lib/",
             "/usr/local/libexec/", "/usr/libexec/")
SHEBANG = "#!"
PATH_CHARS = re.compile(r"[A-Za-z0-9/._+-]+")   # a path the shell, mount(8) and keepalived each read as itself


class ScriptFile(Strict):
    """A file an inventory command runs: shipped from the repository (source or content, written root
    0755) or present on the nodes already (present: true; deploy checks it is there and executable)."""
    source: str | None = Field(None, description="The file to ship, relative to inventories/ (e.g. "
                               "scripts/check_nginx.sh) or absolute; it must start with #!.")
    content: str | None = Field(None, description="The script's text itself, shipped as is; it must start "
                                "with #!.")
    present: bool = Field(False, description="true: the nodes have this file already; lbtk ships nothing, "
                          "deploy checks it exists and is executable, `inv check` stands a stub in for it.")

    @model_validator(mode="after")
    def _one_kind(self):
        kinds = [k for k in ("source", "content") if getattr(self, k) is not None] + (["present"] if self.present
                                                                                      else [])
        if len(kinds) != 1:
            raise FieldProblem(("source",), "a script is shipped (source or content) or present on the nodes "
                               f"(present: true), exactly one of them; got {', '.join(kinds) or 'none'}",
                               "keep one of source, content, present")
        if self.source is not None and not self.source.strip():
            raise FieldProblem(("source",), "empty source", "name the file relative to inventories/, e.g. "
                               "scripts/check_nginx.sh")
        if self.content is not None and not self.content.startswith(SHEBANG):
            raise FieldProblem(("content",), "the script does not start with #! (keepalived runs only files the "
                               "kernel can execute)", "begin it with an interpreter line, e.g. #!/bin/sh")
        return self

    @property
    def shipped(self) -> bool:
        return not self.present


def node_path(path: str, entry: ScriptFile) -> str:
    """A scripts: key: the absolute path on the node, one keepalived word; a shipped one under SHIP_DIRS."""
    keepalived_word(path, "script path")
    if not PATH_CHARS.fullmatch(path):
        raise FieldProblem((path,), f"{path!r} holds characters other than letters, digits and / . _ + -",
                           "name the file with those only")
    if not path.startswith("/") or posixpath.normpath(path) != path or path.endswith("/"):
        raise FieldProblem((path,), f"{path!r} is not an absolute path to a file (no '.', '..' or '//')",
                           "write the full path on the node, e.g. /etc/keepalived/scripts/check_nginx.sh")
    if entry.shipped:
        if not path.startswith(SHIP_DIRS):
            raise FieldProblem((path,), f"{path} is outside the root-only directories lbtk ships scripts to "
                               "(enable_script_security refuses a script any other user could replace)",
                               f"put it under one of {', '.join(SHIP_DIRS)}")
        name = posixpath.basename(path)
        if name.startswith("lbtk") or path == "/etc/keepalived/keepalived.conf":
            raise FieldProblem((path,), f"{path} is a name lbtk keeps for its own files",
                               "choose another file name")
    return path


def program(command: str) -> str:
    """The file a command runs: its first word (keepalived splits a script's command at spaces)."""
    return command.split()[0] if command.split() else command


def script_commands(inv: "Inventory") -> list[tuple[tuple, str]]:
    """(field path, command) of every inventory command keepalived runs as a file: THE list the
    scripts rules and the check's stand-ins read (a new checker that runs a script adds itself here)."""
    out: list[tuple[tuple, str]] = [(("vrrp_scripts", name, "script"), s.script)
                                    for name, s in inv.vrrp_scripts.items()]
    for i, vi in enumerate(inv.vrrp_instances):
        for key in ("notify_master", "notify_backup", "notify_fault", "notify"):
            if getattr(vi, key):
                out.append((("vrrp_instances", i, key), getattr(vi, key)))
    return out


def scripts_problems(inv: "Inventory"):
    """A command naming a file in a directory `scripts:` holds, but not one of its files: a typo (keepalived
    would disable the check, or drop the notify without a word)."""
    dirs = {posixpath.dirname(p) for p in inv.scripts}
    for loc, command in script_commands(inv):
        prog = program(command)
        if prog.startswith("/") and prog not in inv.scripts and posixpath.dirname(prog) in dirs:
            near = sorted(p for p in inv.scripts if posixpath.dirname(p) == posixpath.dirname(prog))
            yield FieldProblem(loc, f"{prog} is not in scripts: (that directory holds {', '.join(near)})",
                               "fix the path, or ship it (source/content) or declare it (present: true) "
                               "under scripts:")
