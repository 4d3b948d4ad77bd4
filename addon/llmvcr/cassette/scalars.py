"""How go-yaml writes one scalar: whether a plain scalar would read back as something other
than a string (go-yaml's resolve, plus the extra quoting of its encoder), and which style
libyaml's analysis picks (plain, single-quoted, double-quoted, literal block, `!!binary`), as
text that follows a `key:` or `-` indicator.

The rules are stated in `docs/cassette-format.md`; `emitter.py` and the writer both use these
functions, so the two writing paths cannot disagree about a scalar.
"""

from __future__ import annotations

import base64
import re

from .govalues import go_parse_int, go_parse_uint
from .model import SURROGATE

# ---------------------------------------------------------------------------------------------
# Which strings a plain scalar would turn into something else (go-yaml's resolve + the extra
# quoting of its encoder: YAML 1.1 bools, base-60 numbers, the merge key)

RESOLVE_FIRST = frozenset("+-.0123456789yYnNtTfFoO~<")
_NON_STRING_WORDS = frozenset().union(
    ("true", "True", "TRUE", "false", "False", "FALSE", "~", "null", "Null", "NULL", "<<"),
    (".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"),
    ("-.inf", "-.Inf", "-.INF", "y", "Y", "yes", "Yes", "YES", "on", "On", "ON"),
    ("n", "N", "no", "No", "NO", "off", "Off", "OFF"),
)
_YAML_STYLE_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_DOT_FLOAT = re.compile(r"\.[0-9](?:_?[0-9])*(?:[eE][-+]?[0-9](?:_?[0-9])*)?")
_BASE60_FLOAT = re.compile(r"[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?")
_TIMESTAMP_DATE = re.compile(r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})")
_TIMESTAMP_T = re.compile(
    r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})[Tt]([0-9]{1,2}):([0-9]{1,2}):([0-9]{1,2})"
    r"(?:[.,][0-9]+)?(?:Z|[-+]([0-9]{2}):([0-9]{2}))"
)
_TIMESTAMP_SPACE = re.compile(
    r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2}) +([0-9]{1,2}):([0-9]{1,2}):([0-9]{1,2})(?:[.,][0-9]+)?"
)
def _days_in_month(year: int, month: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _is_timestamp(s: str) -> bool:
    """Whether Go's time.Parse accepts `s` in one of the layouts yaml.v3 tries."""
    if len(s) < 5 or not s[:4].isascii() or not s[:4].isdigit() or s[4] != "-":
        return False
    m = _TIMESTAMP_DATE.fullmatch(s) or _TIMESTAMP_T.fullmatch(s) or _TIMESTAMP_SPACE.fullmatch(s)
    if m is None:
        return False
    year, month, day = int(m[1]), int(m[2]), int(m[3])
    if not 1 <= month <= 12 or not 1 <= day <= _days_in_month(year, month):
        return False
    if m.re is _TIMESTAMP_DATE:
        return True
    if int(m[4]) >= 24 or int(m[5]) >= 60 or int(m[6]) >= 60:
        return False
    if m.re is _TIMESTAMP_T and m[7] is not None:
        return int(m[7]) <= 24 and int(m[8]) <= 60
    return True



def _is_finite_float(text: str) -> bool:
    value = float(text.replace("_", ""))
    return value not in (float("inf"), float("-inf"))


def resolves_to_non_string(s: str) -> bool:
    """Whether go-yaml would quote `s`: as a plain scalar it would read back as a null, bool, int,
    float, timestamp, YAML 1.1 bool, base-60 number or merge key."""
    if not s or s in _NON_STRING_WORDS:
        return True
    c = s[0]
    if c == ".":
        return _DOT_FLOAT.fullmatch(s) is not None and _is_finite_float(s)
    if c not in "+-0123456789":
        return False
    if _is_timestamp(s):
        return True
    plain = s.replace("_", "")
    if plain[:1] in ("+", "-"):
        if go_parse_int(plain, 0) is not None:
            return True
    elif go_parse_uint(plain, 0) is not None:
        return True
    if _YAML_STYLE_FLOAT.fullmatch(plain) and _is_finite_float(plain):
        return True
    for prefix, base in (("0b", 2), ("0o", 8)):
        if plain.startswith(prefix):
            if go_parse_int(plain[2:], base) is not None:
                return True
            if go_parse_uint(plain[2:], base) is not None:
                return True
        elif plain.startswith("-" + prefix) and go_parse_int("-" + plain[3:], base) is not None:
            return True
    return ":" in s and _BASE60_FLOAT.fullmatch(s) is not None


# ---------------------------------------------------------------------------------------------
# Scalar styles (libyaml's analysis, as the format doc states it)

# printable in libyaml and not a line break (U+2028/U+2029 are double-quoted: see the doc)
_PRINTABLE_HIGH = "\\xa0-\\u2027\\u202a-\\ud7ff\\ue000-\\ufefe\\uff00-\\ufffd"
_PRINTABLE = "\\x20-\\x7e" + _PRINTABLE_HIGH
_PRINTABLE_NO_SPACE = "\\x21-\\x7e" + _PRINTABLE_HIGH
PLAIN_OK = re.compile(
    r"(?![-?:](?: |\Z))"  # "- ", "? ", ": " (or the indicator alone) at the start
    r"(?![#,\[\]{}&*!|>'\"%@`])"  # an indicator as first character
    r"(?!---|\.\.\.)"  # document markers
    r"(?!.*(?:: | #))"  # a mapping value or a comment inside
    rf"[{_PRINTABLE_NO_SPACE}](?:[{_PRINTABLE}]*[{_PRINTABLE_NO_SPACE}])?"  # no edge spaces
    r"(?<!:)\Z"  # a final ":" reads as a mapping key
)
_SINGLE_OK = re.compile(rf"[{_PRINTABLE}]*\Z")
_NOT_IN_LITERAL = re.compile(rf"[^\t\n{_PRINTABLE}]")
NEEDS_ESCAPE = re.compile(rf"[^\x20\x21\x23-\x5b\x5d-\x7e{_PRINTABLE_HIGH}]")
_NEEDS_RARE_ESCAPE = re.compile(rf"[^\t\n\r\x20-\x7e{_PRINTABLE_HIGH}]")
ESCAPES = {
    "\0": "\\0",
    "\a": "\\a",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\v": "\\v",
    "\f": "\\f",
    "\r": "\\r",
    "\x1b": "\\e",
    '"': '\\"',
    "\\": "\\\\",
    "\x85": "\\N",
    "\xa0": "\\_",
    "\u2028": "\\L",
    "\u2029": "\\P",
}


def escape_char(c: str) -> str:
    known = ESCAPES.get(c)
    if known is not None:
        return known
    v = ord(c)
    if v <= 0xFF:
        return f"\\x{v:02X}"
    if v <= 0xFFFF:
        return f"\\u{v:04X}"
    return f"\\U{v:08X}"


def _escape_match(m: re.Match[str]) -> str:
    return escape_char(m.group())


def double_quoted(s: str) -> str:
    """The text between double quotes. go-yaml's BOM test looks at the start of the value for
    every character, so a value starting with U+FEFF has every character escaped."""
    if s.startswith("\ufeff"):
        return "".join(map(escape_char, s))
    if NEEDS_ESCAPE.search(s) is None:
        return s
    # the common escapes by C-speed replaces (the backslash first), the rare ones by the regex
    s = s.replace("\\", "\\\\").replace('"', '\\"')
    s = s.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return _NEEDS_RARE_ESCAPE.sub(_escape_match, s)


def surrogates_as_bytes(s: str) -> bytes:
    """A string holding lone surrogates (bytes that were not UTF-8, read with surrogateescape) as
    the bytes go-yaml would have had: they are written `!!binary`."""
    try:
        return s.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError as e:
        raise ValueError(f"cannot write a string holding a lone surrogate: {s!r}") from e


# Scalar texts as they follow a "key:" or "-" indicator, each ending with its line break.
_INLINE_CACHE: dict[str, str | None] = {}


def inline_text(s: str) -> str | None:
    """The one-line scalar go-yaml writes for `s` (no `\\n` in it), with the leading space and the
    line break; None when `s` must be written `!!binary`."""
    if not s:
        return ' ""\n'
    if s[0] in RESOLVE_FIRST and resolves_to_non_string(s):
        pass  # go-yaml asks for double quotes straight away
    elif PLAIN_OK.match(s):
        return " " + s + "\n"
    elif _SINGLE_OK.match(s):
        return " '" + s.replace("'", "''") + "'\n"
    if SURROGATE.search(s):
        return None
    return ' "' + double_quoted(s) + '"\n'


def _cached_inline_text(s: str) -> str | None:
    text = _INLINE_CACHE.get(s)
    if text is None:
        text = inline_text(s)
        if len(s) <= 256:
            if len(_INLINE_CACHE) > 20000:
                _INLINE_CACHE.clear()
            _INLINE_CACHE[s] = text
    return text


def literal_text(s: str, indent: int, hint: int) -> str:
    """A literal block; `hint` is the indentation indicator, written when the first line starts
    with a space, a line break or a tab (go-yaml omits it for a tab, and then neither go-yaml nor
    libyaml can read the block back)."""
    head = " |"
    if s[0] in " \n\t":
        head += str(hint)
    if s[-1] != "\n":
        head += "-"
    elif len(s) == 1 or s[-2] == "\n":
        head += "+"
    pad = " " * indent
    body = "\n".join([pad + line if line else line for line in s.split("\n")])
    return head + "\n" + body if s[-1] == "\n" else head + "\n" + body + "\n"


def binary_text(data: bytes, indent: int) -> str:
    encoded = base64.b64encode(data).decode("ascii")
    if len(encoded) < 70:
        return " !!binary " + encoded + "\n"
    pad = " " * indent
    lines = [pad + encoded[i : i + 70] + "\n" for i in range(0, len(encoded), 70)]
    return " !!binary |\n" + "".join(lines)


def literal_allowed(s: str) -> bool:
    """libyaml allows a literal block without special characters and without a space at the end
    of a line (three C-speed scans rather than one regex with alternatives, for long bodies)."""
    return _NOT_IN_LITERAL.search(s) is None and " \n" not in s and not s.endswith(" ")


def str_text(s: str, indent: int, hint: int) -> str:
    """A string value as go-yaml writes it after "key:" or "-": block content at column `indent`,
    `hint` columns right of the key or dash (go-yaml always writes its indent width there, which
    is wrong for a list item in the 4-space layout; this writes the right number)."""
    if "\n" not in s:
        text = _cached_inline_text(s)
        return text if text is not None else binary_text(surrogates_as_bytes(s), indent)
    if literal_allowed(s):
        return literal_text(s, indent, hint)
    if SURROGATE.search(s):
        return binary_text(surrogates_as_bytes(s), indent)
    return ' "' + double_quoted(s) + '"\n'


def bytes_text(data: bytes, indent: int, hint: int) -> str:
    try:
        s = data.decode("utf-8")
    except UnicodeDecodeError:
        return binary_text(data, indent)
    return str_text(s, indent, hint)


_KEY_CACHE: dict[str, str | None] = {}


def simple_key_text(key: str) -> str | None:
    """A map key as go-yaml writes it before ":", or None when go-yaml would not write it as a
    simple key (more than 128 bytes, a line break, or `!!binary`)."""
    text = _KEY_CACHE.get(key)
    if text is None and key not in _KEY_CACHE:
        if "\n" not in key and len(key.encode("utf-8", "surrogatepass")) <= 128:
            inline = inline_text(key)
            if inline is not None and not any(c in key for c in "\r\x85\u2028\u2029"):
                text = inline[1:-1]
        if len(_KEY_CACHE) > 20000:
            _KEY_CACHE.clear()
        _KEY_CACHE[key] = text
    return text
