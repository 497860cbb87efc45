"""What sudo says when it refuses (its stderr) -> why, in one word; None when it did not refuse.

sudo 1.9 (Debian 12): `sudo: a password is required` (-n without NOPASSWD), `Sorry, try again.` and
`sudo: 1 incorrect password attempt` (-S with a wrong password), `USER is not in the sudoers file`,
`Sorry, user USER is not allowed to execute ...`, `sudo: sorry, you must have a tty to run sudo`.
"""
from __future__ import annotations


def refusal(stderr: str) -> str | None:
    """password-required | wrong-password | not-allowed | needs-tty | None."""
    for line in stderr.splitlines():
        ln = line.strip()
        if "a password is required" in ln and ln.startswith("sudo:"):
            return "password-required"
        if ln == "Sorry, try again." or ("incorrect password attempt" in ln and ln.startswith("sudo:")):
            return "wrong-password"
        if "not in the sudoers" in ln or ("is not allowed to" in ln and ln.startswith("Sorry, user")):
            return "not-allowed"
        if "must have a tty" in ln or "a terminal is required" in ln:
            return "needs-tty"
    return None


__all__ = ["refusal"]
