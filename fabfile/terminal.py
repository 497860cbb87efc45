"""What a terminal may be shown: strings that came from a node, made visible-safe (ESC, other
controls and invisible Unicode written out). The bottom of the shared layer: errors, output and
progress all show text through `visible`.
"""
from __future__ import annotations

import re

# What a terminal acts on or hides, whoever printed it: C0 and C1 controls (ESC starts CSI and OSC
# sequences: clear the screen, move the cursor, set the title, a hyperlink), DEL, and Unicode's
# format, separator and surrogate characters (bidi overrides and isolates reorder what is shown,
# zero-width ones hide text, the tag block smuggles it, a lone surrogate cannot even be encoded).
# That is every character of the categories Cc, Cf, Cs, Zl and Zp (tests/unit/test_hostile_facts.py
# holds this list to unicodedata).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\xad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e"
                     "\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ud800-\udfff\ufeff\ufff9-\ufffb"
                     "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
                     "\U000e0001\U000e0020-\U000e007f]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(m: re.Match) -> str:
    c = m.group()
    n = ord(c)
    return _NAMED.get(c) or (f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}" if n < 0x10000 else f"\\U{n:08x}")


def visible(text: str, lines: bool = False) -> str:
    """`text` with every character a terminal would act on, or would hide, written out as Python
    writes it in a string literal (ESC as `\\x1b`, a newline as `\\n`, U+202E as `\\u202e`), so
    a node cannot clear the screen, recolour a row or draw a fake table. `lines`: newlines stay
    (text of several lines, e.g. a diff). Backslashes stay as they are: a node that prints `\\x1b`
    as four characters shows the same, and harmless, text."""
    if lines:
        return "\n".join(_UNSAFE.sub(_escape, ln) for ln in text.split("\n"))
    return _UNSAFE.sub(_escape, text)
