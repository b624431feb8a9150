"""IM auth data: the text of an Authorization header or an auth file, as a list of lines."""

from __future__ import annotations

import json

_NEWLINE_IN_VALUE = "\x00"  # stands for a "\\n" (escaped newline) while lines are split


def split_pairs(line: str) -> dict[str, str]:
    """`k = v; k2 = 'v;2'` → {k: v, k2: 'v;2'}; quotes protect ; and =."""
    pairs: dict[str, str] = {}
    fields: list[list[tuple[str, bool]]] = [[]]  # characters, and whether they were quoted
    quote = ""
    for ch in line:
        if quote:
            if ch == quote:
                quote = ""
            else:
                fields[-1].append((ch, True))
        elif ch in "'\"":
            quote = ch
        elif ch == ";":
            fields.append([])
        else:
            fields[-1].append((ch, False))
    for chars in fields:
        cuts = [i for i, (ch, quoted) in enumerate(chars) if ch == "=" and not quoted]
        text = "".join(ch for ch, _ in chars)
        if not text.strip():
            continue
        # IM stops reading a line at a pair that is not exactly key=value (an unquoted '=')
        if len(cuts) != 1 or not text[: cuts[0]].strip():
            break
        key, value = text[: cuts[0]].strip(), text[cuts[0] + 1 :].strip()
        pairs[key] = value.replace(_NEWLINE_IN_VALUE, "\n").replace("\\n", "\n")
    return pairs


def _json_lines(text: str) -> list[dict[str, str]] | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if isinstance(data, dict):
        data = [data]
    if isinstance(data, list) and data and all(isinstance(x, dict) for x in data):
        return [{str(k): str(v) for k, v in item.items() if v is not None} for item in data]
    return None


def parse_auth_data(text: str) -> list[dict[str, str]]:
    """Every auth line of an IM Authorization header or auth file, as dicts."""
    text = text.strip()
    if text.startswith(("[", "{")):
        lines = _json_lines(text)  # IM ≥ 1.19.1: the header may be a JSON array
        if lines is not None:
            return lines
    # In a header, lines are joined by a literal backslash-n, and a newline inside a value is an
    # escaped backslash-backslash-n; an auth file has real newlines.
    text = text.replace("\\\\n", _NEWLINE_IN_VALUE)
    lines = []
    for raw in text.replace("\\n", "\n").splitlines():
        raw = raw.strip()
        if not raw or raw.startswith("#"):
            continue
        pairs = split_pairs(raw)
        if pairs:
            lines.append(pairs)
    return lines


def to_header(lines: list[dict[str, str]]) -> str:
    """Auth lines as one Authorization header value (the inverse of parse_auth_data)."""

    def quote(value: str) -> str:
        value = value.replace("\n", "\\\\n")
        return f"'{value}'" if any(c in value for c in ";='\"") else value

    return "\\n".join("; ".join(f"{k} = {quote(v)}" for k, v in line.items()) for line in lines)
