"""A secret is masked however it is spelled in output (issue 24): as is, inside JSON (escaped `"`
and `\\`, non-ASCII as \\uXXXX or kept) and shell-quoted, e.g. a sudo password with a quote in it."""
from __future__ import annotations

import json
import shlex

import pytest

from fabfile import output
from fabfile.model import secrets

HARD = ['pa"ss', "ba\\ck", "caf\u00e9-9", "it's", 'q"\\\u00fc\'x']


@pytest.fixture
def known():
    """The run's Masker (a task's masking scope), fresh for each test."""
    with secrets.masking(secrets.Masker()) as m:
        yield m


@pytest.mark.parametrize("secret", HARD)
@pytest.mark.parametrize("form", ["raw", "json", "json-unicode", "shell"])
def test_every_spelling_of_a_secret_is_masked(known, secret, form):
    known.add(secret)
    spelled = {"raw": secret, "json": json.dumps(secret)[1:-1],
               "json-unicode": json.dumps(secret, ensure_ascii=False)[1:-1], "shell": shlex.quote(secret)}[form]
    masked = secrets.mask(f"before {spelled} after")
    assert masked == f"before {secrets.MASK} after", masked


@pytest.mark.parametrize("secret", HARD)
def test_json_output_never_shows_the_secret(known, secret, capsys):
    known.add(secret)
    output.show_json({"detail": f"sudo said {secret}", "cmd": f"echo {shlex.quote(secret)}"})
    out = capsys.readouterr().out
    for spelled in (secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]):
        assert spelled not in out, out
    assert json.loads(out)["detail"] == f"sudo said {secrets.MASK}"
