"""One strict parser for the integers of every surface: revisions, limits, TTLs, versions, cursors' ids.

ASCII digits only (Unicode digits pass `str.isdigit()` and then fail `int()`), at most 19 of them, and
within int64, so nothing past Python's or SQLite's integer limits ever reaches the engine.
"""

from __future__ import annotations

from ...engine.errors import InvalidArgument

INT64_MAX = 2**63 - 1


def parse_int(raw: str, name: str, lo: int = 0, hi: int = INT64_MAX) -> int:
    """A decimal integer in [lo, hi]; a leading '-' only when lo < 0. Raises InvalidArgument(field=name)."""
    text = raw.strip()
    digits = text[1:] if text.startswith("-") and lo < 0 else text
    if not digits or len(digits) > 19 or not digits.isascii() or not digits.isdigit():
        raise InvalidArgument(f"{name} must be an integer between {lo} and {hi}", field=name)
    value = int(text)
    if not lo <= value <= hi:
        raise InvalidArgument(f"{name} must be an integer between {lo} and {hi}", field=name)
    return value


def optional_int(raw: str | None, name: str, default: int | None = None, lo: int = 0, hi: int = INT64_MAX) -> int | None:
    return default if raw is None or raw == "" else parse_int(raw, name, lo, hi)


def parse_seconds(raw: str, name: str, hi: float) -> float:
    """A non-negative finite number of seconds, optionally suffixed `s`, at most `hi`."""
    text = raw.strip().removesuffix("s")
    if not text or len(text) > 32 or not text.isascii() or text.lower() in ("nan", "inf", "infinity", "+inf"):
        raise InvalidArgument(f"{name} must be a number of seconds (0-{hi:g})", field=name)
    try:
        value = float(text)
    except ValueError:
        raise InvalidArgument(f"{name} must be a number of seconds (0-{hi:g})", field=name) from None
    if not 0 <= value <= hi:
        raise InvalidArgument(f"{name} must be a number of seconds (0-{hi:g})", field=name)
    return value


def parse_bool(raw: str | None, name: str, default: bool) -> bool:
    if raw is None:
        return default
    text = raw.strip().lower()
    if text in ("1", "true", "yes"):
        return True
    if text in ("0", "false", "no", ""):
        return False
    raise InvalidArgument(f"{name} must be true or false", field=name)


def parse_position(raw: str, name: str, max_digits: int = 4096) -> int:
    """A non-negative stream position; a number beyond int64 is clamped to INT64_MAX (a position in the
    future, which the engine answers as such) instead of reaching the parser or SQLite."""
    text = raw.strip()
    if not text or len(text) > max_digits or not text.isascii() or not text.isdigit():
        raise InvalidArgument(f"{name} must be a non-negative integer", field=name)
    return INT64_MAX if len(text) > 19 else min(int(text), INT64_MAX)
