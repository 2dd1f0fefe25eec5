"""Database URLs in what we print: a password never appears."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit


def mask_url(url: str) -> str:
    """`url` with any password replaced by ***: URLs (user:password@, ?password=) and key=value strings."""
    if "://" not in url:
        words = []
        for word in url.split():
            name, sep, _ = word.partition("=")
            words.append(f"{name}=***" if sep and name.strip().lower() == "password" else word)
        return " ".join(words)
    parts = urlsplit(url)
    netloc = parts.netloc
    userinfo, at, hosts = netloc.rpartition("@")
    if at and ":" in userinfo:
        netloc = f"{userinfo.split(':', 1)[0]}:***@{hosts}"
    query = parts.query
    if query:
        pairs = [(k, "***" if k.lower() == "password" else v) for k, v in parse_qsl(query, keep_blank_values=True)]
        query = urlencode(pairs, safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
