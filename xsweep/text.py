"""What text a NetCDF file keeps faithfully: names, strings and failure messages.

NetCDF text is UTF-8 and ends at the first NUL character; names have a length limit and a
few reserved forms. Parameters, outputs and the store all check what they write against the
rules here, so that nothing comes back different from what went in.
"""

from __future__ import annotations

import unicodedata
from typing import Any

#: NetCDF's limit on a name's length in bytes. A name of exactly 256 bytes is written, but
#: netCDF4-python then fails to read the file back, so names hold at most 255 bytes.
NC_MAX_NAME = 256
MAX_NAME_BYTES = NC_MAX_NAME - 1
#: Failure messages longer than this many characters are cut (a file holds every message).
MAX_MESSAGE_CHARS = 16_384


def text_problem(text: str) -> str | None:
    r"""Why ``text`` cannot be stored faithfully in a NetCDF file, or None if it can.

    NetCDF text is UTF-8 and ends at the first NUL character, so both a NUL and a string
    that is not valid Unicode (a lone surrogate) would come back different.

    Examples
    --------
    >>> from xsweep.text import text_problem
    >>> text_problem("fine") is None
    True
    >>> text_problem("a" + chr(0) + "b")
    "holds a NUL character ('\\x00') at position 1, where text in a NetCDF file ends"
    """
    if "\0" in text:
        return (
            f"holds a NUL character ('\\x00') at position {text.index(chr(0))}, where text in "
            "a NetCDF file ends"
        )
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            return (
                f"holds {text[exc.start]!r} at position {exc.start}, a lone surrogate that is "
                "not valid Unicode and cannot be stored as UTF-8"
            )
    return None


def clean_message(message: str) -> str:
    r"""A failure message as it can be stored: NULs and lone surrogates escaped, length capped.

    Examples
    --------
    >>> from xsweep.text import clean_message
    >>> clean_message("ValueError: " + chr(0xDCFF) + " and " + chr(0))
    'ValueError: \\udcff and \\x00'
    """
    if "\0" in message:
        message = message.replace("\0", "\\x00")
    if not message.isascii():
        message = message.encode("utf-8", "backslashreplace").decode("utf-8")
    if len(message) > MAX_MESSAGE_CHARS:
        cut = len(message) - MAX_MESSAGE_CHARS
        message = f"{message[:MAX_MESSAGE_CHARS]} ... [{cut} more characters cut]"
    return message


def describe_exception(exc: BaseException) -> str:
    """``"Type: message"`` for a failed cell, whatever the exception's ``__str__`` does."""
    try:
        text = str(exc)
    except Exception:  # an exception whose __str__ raises must not stop the sweep
        try:
            text = repr(exc)
        except Exception:
            text = "<the exception could not be printed>"
    return clean_message(f"{type(exc).__name__}: {text}")


def name_problem(name: Any) -> str | None:
    """Why ``name`` cannot name a variable or dim in a NetCDF file, or None if it can.

    Examples
    --------
    >>> from xsweep.text import name_problem
    >>> name_problem("temperature") is None
    True
    >>> name_problem("a/b")
    "contains '/'"
    """
    if not isinstance(name, str) or not name:
        return "is not a non-empty string"
    if "/" in name:
        return "contains '/'"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "contains a control character"
    problem = text_problem(name)
    if problem:
        return problem
    if name.startswith("_"):
        return "starts with '_', which NetCDF reserves"
    if name[0].isspace() or name[-1].isspace():
        return "starts or ends with a space"
    if not name.isascii() and not unicodedata.is_normalized("NFC", name):
        return "is not in Unicode normal form NFC (NetCDF would store it changed)"
    size = len(name.encode("utf-8"))
    if size > MAX_NAME_BYTES:
        return f"is {size} bytes long; NetCDF names are at most {MAX_NAME_BYTES} bytes"
    return None
