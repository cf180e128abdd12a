"""Base64 in plain SQLite SQL, for the short ASCII texts of global IDs and
cursors (SQLite has no base64 function, and a function registered in Python
would be called once per row).

The text is ``prefix || dynamic``: the whole 3-byte groups of the constant
prefix are encoded here, once; the rest is encoded in SQL, group by group, up
to ``max_length`` characters. Only ASCII is supported: SQLite's ``unicode()``
gives code points, which are bytes only below 128.
"""

from __future__ import annotations

import base64

STANDARD = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
URLSAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _group(k: int, alphabet: str) -> str:
    """The 4 characters of the k-th 3-byte group of column ``s`` (of length ``n``)."""
    table = _quote(alphabet)

    def byte(i: int) -> str:
        return f"coalesce(unicode(substr(s, {3 * k + i + 1}, 1)), 0)"

    def char(index: str) -> str:
        return f"substr({table}, ({index}) + 1, 1)"

    first = char(f"{byte(0)} >> 2")
    second = char(f"(({byte(0)} & 3) << 4) | ({byte(1)} >> 4)")
    third = char(f"(({byte(1)} & 15) << 2) | ({byte(2)} >> 6)")
    fourth = char(f"{byte(2)} & 63")
    return (
        f"CASE WHEN n > {3 * k} THEN {first} || {second} || "
        f"CASE WHEN n > {3 * k + 1} THEN {third} ELSE '=' END || "
        f"CASE WHEN n > {3 * k + 2} THEN {fourth} ELSE '=' END ELSE '' END"
    )


def sqlite_base64(prefix: str, dynamic: str, max_length: int, urlsafe: bool = False) -> str:
    """SQL for base64(prefix || dynamic), ``dynamic`` an ASCII text expression
    of at most ``max_length`` characters (longer texts are cut: callers bound it)."""
    alphabet = URLSAFE if urlsafe else STANDARD
    whole = len(prefix) // 3 * 3
    head = base64.b64encode(prefix[:whole].encode()).decode()
    if urlsafe:
        head = head.replace("+", "-").replace("/", "_")
    rest = prefix[whole:]
    text = f"{_quote(rest)} || ({dynamic})" if rest else f"({dynamic})"
    groups = -(-(len(rest) + max_length) // 3)
    body = " || ".join(_group(k, alphabet) for k in range(groups))
    return (
        f"(SELECT {_quote(head)} || {body} FROM "
        f"(SELECT s, length(s) AS n FROM (SELECT CAST({text} AS TEXT) AS s)))"
    )
