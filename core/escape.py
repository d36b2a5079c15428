"""Names are data: the one escaping layer per output format, used by every writer.

Identity, file, contract, swapper and display names come from users and other labs. Each output format gets
one function here so no name can add markup, script, columns, rows or formulas:

* :func:`html_text` - HTML text and attribute values (``& < > " '``), control characters made visible;
* :func:`md_cell` - a Markdown table cell (``|``, newlines, emphasis, inline HTML);
* :func:`tex` - LaTeX text (the ten special characters, ``< > |``, control characters);
* :func:`csv_cell` - a spreadsheet cell: a text starting with ``= + - @`` TAB or CR gets a leading ``'``
  (OWASP "CSV injection"), so Excel/LibreOffice show it as text instead of evaluating it;
* :func:`field` / :func:`unfield` - one field of a TSV or text row (``identities.txt``, the npz ``skipped``
  rows): backslash, TAB, newline, NUL and other control characters escaped losslessly;
* :func:`shown` - a name as shown to people: control characters and undecodable bytes of non-UTF-8 file
  names (``surrogateescape``) as ``\\xNN``;
* :func:`nfc` - one Unicode spelling of a name (NFC), so NFC and NFD spellings are one person.
"""

from __future__ import annotations

import html
import re
import unicodedata
from typing import Any

__all__ = ["shown", "decodable", "html_text", "md_cell", "tex", "csv_cell", "field", "unfield", "nfc", "has_control"]

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_SURROGATE = re.compile(r"[\udc80-\udcff]")


def has_control(s: str) -> bool:
    """Whether ``s`` holds a control character (TAB, newline, NUL, ...) or an undecodable byte."""
    return bool(_CONTROL.search(s) or _SURROGATE.search(s))


def shown(s: Any, keep: str = "") -> str:
    """``s`` as text safe to show: control characters (but those in ``keep``) and undecodable bytes become
    ``\\xNN`` / ``\\uNNNN``."""
    s = _SURROGATE.sub(lambda m: f"\\x{ord(m.group()) - 0xDC00:02x}", str(s))
    return _CONTROL.sub(lambda m: m.group() if m.group() in keep else
                        f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256 else f"\\u{ord(m.group()):04x}", s)


def decodable(obj: Any) -> Any:
    """``obj`` (nested dicts/lists/strings) with every undecodable file-name byte shown as ``\\xNN``: a page's
    charts get no lone surrogate (headless Chromium crashed rendering one in a plot label)."""
    if isinstance(obj, str):
        return _SURROGATE.sub(lambda m: f"\\x{ord(m.group()) - 0xDC00:02x}", obj) if _SURROGATE.search(obj) else obj
    if isinstance(obj, dict):
        return {decodable(k): decodable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [decodable(v) for v in obj]
    return obj


def nfc(s: str) -> str:
    """The NFC spelling of a name (macOS file systems hand out NFD: ``e`` + combining accent)."""
    return unicodedata.normalize("NFC", s)


def html_text(s: Any) -> str:
    """Text for an HTML element or quoted attribute value (newlines and TABs are kept: whitespace in HTML)."""
    return html.escape(shown(s, keep="\n\t"), quote=True)


_MD = {"\\": "\\\\", "|": "\\|", "*": "\\*", "`": "\\`", "~": "\\~", "<": "&lt;", ">": "&gt;", "&": "&amp;"}


def md_cell(s: Any) -> str:
    """Text for one cell of a Markdown (GFM) table: no new columns, rows, emphasis, links or HTML.

    ``_`` is escaped only where it could open or close emphasis (an intraword ``_`` as in ``positive_mean``
    is plain text in GFM), ``(`` only after ``]`` (what would make ``[text](url)`` a link)."""
    text, out = shown(s), []
    for i, ch in enumerate(text):
        if ch == "_":
            inner = 0 < i < len(text) - 1 and text[i - 1].isalnum() and text[i + 1].isalnum()
            out.append("_" if inner else "\\_")
        elif ch == "(" and i and text[i - 1] == "]":
            out.append("\\(")
        else:
            out.append(_MD.get(ch, ch))
    return "".join(out)


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
        "}": r"\}", "~": r"\textasciitilde{}", "^": r"\^{}", "<": r"\textless{}", ">": r"\textgreater{}",
        "|": r"\textbar{}"}


def tex(s: Any) -> str:
    """Text for LaTeX: every special character as its text command (``\\textbf`` stays the text \\textbf)."""
    return "".join(_TEX.get(ch, ch) for ch in shown(s))


_FORMULA = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")  # "-3.0" is a number, not a formula


def csv_cell(v: Any, keep_bytes: bool = False) -> Any:
    """A CSV cell: numbers (and number strings such as ``-3.0``) as they are; text starting like a formula
    (``= + - @`` TAB CR) gets a leading ``'`` (shown, not run). ``keep_bytes``: undecodable bytes stay surrogate
    escapes (for a file opened with ``errors="surrogateescape"`` that is read back, e.g. a swap manifest)."""
    if v is None or isinstance(v, (bool, int, float)):
        return v
    s = str(v)
    s = s if keep_bytes or not _SURROGATE.search(s) else shown(s)
    return "'" + s if s.startswith(_FORMULA) and not _NUMBER.match(s) else s


def csv_uncell(s: str) -> str:
    """The text :func:`csv_cell` was given: its formula guard (a leading ``'``) removed."""
    return s[1:] if s.startswith("'") and s[1:].startswith(_FORMULA) and not _NUMBER.match(s[1:]) else s


_FIELD = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"}


def field(s: Any) -> str:
    """One TSV/text-row field, losslessly: ``\\\\``, ``\\t``, ``\\n``, ``\\r``, other controls as ``\\xNN``,
    undecodable bytes as ``\\xNN`` too (read back by :func:`unfield` as the surrogate escapes they were)."""
    out = []
    for ch in str(s):
        o = ord(ch)
        if ch in _FIELD:
            out.append(_FIELD[ch])
        elif 0xDC80 <= o <= 0xDCFF:
            out.append(f"\\u{o:04x}")
        elif _CONTROL.match(ch):
            out.append(f"\\x{o:02x}" if o < 256 else f"\\u{o:04x}")
        else:
            out.append(ch)
    return "".join(out)


_UNFIELD = re.compile(r"\\(\\|t|n|r|x[0-9a-f]{2}|u[0-9a-f]{4})")


def unfield(s: str) -> str:
    """The inverse of :func:`field`."""
    simple = {"\\": "\\", "t": "\t", "n": "\n", "r": "\r"}
    return _UNFIELD.sub(lambda m: simple.get(m.group(1)) or chr(int(m.group(1)[1:], 16)), s)
