"""The go-vcr version-2 cassette: data model, reader and writer.

Pure Python (no mitmproxy). The writer reproduces go-yaml's bytes exactly, so a cassette written by
go-vcr loads and saves back unchanged; `../shared/docs/cassette-format.md` has every rule.

Reading has two paths with the same results. A file in the writer's own form (what go-vcr and
this project write) is read line by line and accepted only when the writer gives back its exact
bytes; any other file composes PyYAML nodes with a loader that guesses no types (libyaml's when
present) and converts them field by field, so every type error names its line.

Writing has two paths that produce the same bytes: a fast one for the known fields (constant key
prefixes, one regex pass per string), and `_Emitter`, a port of the parts of go-yaml's emitter a
cassette needs, for unknown keys and unusual map keys.
"""

from __future__ import annotations

import base64
import binascii
import gc
import os
import re
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cmp_to_key, lru_cache

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

try:
    from yaml import CBaseLoader as _YamlLoader
except ImportError:  # PyYAML built without libyaml: same nodes, slower
    from yaml import BaseLoader as _YamlLoader  # type: ignore[assignment]

Headers = dict[str, list[str]]


class CassetteError(ValueError):
    """A cassette that cannot be read: names the file, the line (when known) and the problem."""

    def __init__(self, message: str, path: str | None = None, line: int | None = None) -> None:
        self.message = message
        self.path = path
        self.line = line
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.path or ""
        if self.line is not None:
            where = f"{where}:{self.line}"
        return f"{where}: {self.message}" if where else self.message


class CassetteWarning(UserWarning):
    """A cassette that loads with a part ignored (a `chunks` key that does not fit its body)."""


class PlainText(str):
    """A string under an unknown key that was a plain scalar in the file (a number, a bool, a
    date...): written back plain so that it keeps its YAML type."""

    __slots__ = ()


@dataclass(slots=True)
class Chunk:
    """One streamed chunk (the `chunks` extension key)."""

    at: int  # nanoseconds since the request was sent upstream; written rounded to the millisecond
    size: int  # bytes of the stored body that this chunk carried


@dataclass(slots=True)
class Request:
    method: str = "GET"
    url: str = ""
    body: bytes = b""
    headers: Headers = field(default_factory=dict)
    form: Headers = field(default_factory=dict)
    proto: str = "HTTP/1.1"
    proto_major: int = 1
    proto_minor: int = 1
    content_length: int = 0
    transfer_encoding: list[str] = field(default_factory=list)
    trailer: Headers = field(default_factory=dict)
    host: str = ""
    remote_addr: str = ""
    request_uri: str = ""
    extra: dict[str, object] = field(default_factory=dict)  # unknown keys, kept for round trips


@dataclass(slots=True)
class Response:
    status: str = "200 OK"
    code: int = 200
    headers: Headers = field(default_factory=dict)
    body: bytes = b""
    proto: str = "HTTP/1.1"
    proto_major: int = 1
    proto_minor: int = 1
    transfer_encoding: list[str] = field(default_factory=list)
    trailer: Headers = field(default_factory=dict)
    content_length: int = -1
    uncompressed: bool = False
    duration: int = 0  # nanoseconds: request sent upstream -> response headers (go-vcr's meaning)
    chunks: list[Chunk] | None = None  # None: no `chunks` key
    extra: dict[str, object] = field(default_factory=dict)


@dataclass(slots=True)
class Interaction:
    request: Request
    response: Response
    id: int = 0
    extra: dict[str, object] = field(default_factory=dict)  # unknown keys, written after response


@dataclass(frozen=True, slots=True)
class Style:
    """How a file is laid out; a loaded file remembers its own and saves back in it."""

    indent: int = 2  # 2: charm's compact layout (the seed, most of the corpus); 4: go-vcr default
    omit_empty: bool = True  # False: the older go-vcr shape that writes every key


NEW_FILE_STYLE = Style(2, True)


@dataclass(slots=True)
class Cassette:
    interactions: list[Interaction] = field(default_factory=list)
    style: Style = NEW_FILE_STYLE
    # unknown top-level keys; written between `version` and `interactions` so that appending
    # interactions at the end of the file stays possible
    extra: dict[str, object] = field(default_factory=dict)


EMPTY_INTERACTIONS_LINE = b"interactions: []\n"

# ---------------------------------------------------------------------------------------------
# Go durations (time.Duration.String and time.ParseDuration)

_NS_PER_UNIT = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,  # micro sign, what Go writes
    "\u03bcs": 1_000,  # Greek mu, also accepted by Go
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_INT64_MAX = (1 << 63) - 1


def _fraction(value: int, digits: int) -> str:
    """`value` / 10**digits as Go prints it: no trailing zeros, no point for a whole number."""
    whole, frac = divmod(value, 10**digits)
    if not frac:
        return str(whole)
    return f"{whole}.{frac:0{digits}d}".rstrip("0")


def format_duration(ns: int) -> str:
    """Go's `time.Duration.String()`: `2.195586958s`, `853.364708ms`, `1.5µs`, `0s`, `1h0m0s`."""
    neg = ns < 0
    u = -ns if neg else ns
    if u < 1_000_000_000:
        if u == 0:
            return "0s"
        if u < 1_000:
            text = f"{u}ns"
        elif u < 1_000_000:
            text = _fraction(u, 3) + "\u00b5s"
        else:
            text = _fraction(u, 6) + "ms"
    else:
        seconds, nanos = divmod(u, 1_000_000_000)
        text = _fraction(seconds % 60 * 1_000_000_000 + nanos, 9) + "s"
        minutes = seconds // 60
        if minutes:
            text = f"{minutes % 60}m{text}"
            if minutes >= 60:
                text = f"{minutes // 60}h{text}"
    return "-" + text if neg else text


def parse_duration(text: str) -> int:
    """Go's `time.ParseDuration`, in nanoseconds: every unit (`ns us µs μs ms s m h`), decimals,
    combined units (`1m1.5s`), a sign, a bare `0`. ValueError (naming the text) where Go fails."""
    if not isinstance(text, str):
        raise ValueError(f"invalid duration {text!r}")
    s = text
    neg = False
    if s[:1] in ("-", "+"):
        neg = s[0] == "-"
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise ValueError(f"invalid duration {text!r}")
    total = 0
    while s:
        if not (s[0] == "." or "0" <= s[0] <= "9"):
            raise ValueError(f"invalid duration {text!r}")
        i = 0
        while i < len(s) and "0" <= s[i] <= "9":
            i += 1
        whole_digits, s = s[:i], s[i:]
        whole = int(whole_digits) if whole_digits else 0
        if whole > 1 << 63:
            raise ValueError(f"invalid duration {text!r}")
        frac, scale, frac_digits = 0, 1.0, False
        if s[:1] == ".":
            s = s[1:]
            i = 0
            overflow = False
            while i < len(s) and "0" <= s[i] <= "9":
                frac_digits = True
                if not overflow:
                    if frac > _INT64_MAX // 10:
                        overflow = True
                    else:
                        frac = frac * 10 + ord(s[i]) - 48
                        scale *= 10
                i += 1
            s = s[i:]
        if not whole_digits and not frac_digits:
            raise ValueError(f"invalid duration {text!r}")
        i = 0
        while i < len(s) and not (s[i] == "." or "0" <= s[i] <= "9"):
            i += 1
        if i == 0:
            raise ValueError(f"invalid duration {text!r}: missing unit")
        unit_name, s = s[:i], s[i:]
        unit = _NS_PER_UNIT.get(unit_name)
        if unit is None:
            raise ValueError(f"invalid duration {text!r}: unknown unit {unit_name!r}")
        if whole > (1 << 63) // unit:
            raise ValueError(f"invalid duration {text!r}: out of range")
        value = whole * unit
        if frac:
            # Go computes the fraction in float64; so do we, to get its nanoseconds exactly
            value += int(float(frac) * (float(unit) / scale))
        total += value
        if total > 1 << 63:
            raise ValueError(f"invalid duration {text!r}: out of range")
    if neg:
        return -total
    if total > _INT64_MAX:
        raise ValueError(f"invalid duration {text!r}: out of range")
    return total


def _round_to_ms(ns: int) -> int:
    """Go's `Duration.Round(time.Millisecond)`: halves away from zero."""
    if ns < 0:
        return -_round_to_ms(-ns)
    return (ns + 500_000) // 1_000_000 * 1_000_000


# ---------------------------------------------------------------------------------------------
# Header names

_SURROGATE = re.compile("[\ud800-\udfff]")
_HEADER_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


@lru_cache(maxsize=4096)
def canonical_header_name(name: str) -> str:
    """Go's `textproto.CanonicalMIMEHeaderKey`: `content-type` -> `Content-Type`. A name with a
    character that is not an HTTP token character comes back unchanged, as in Go."""
    if not _HEADER_TOKEN.fullmatch(name):
        return name
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


# ---------------------------------------------------------------------------------------------
# go-yaml's map key order (sorter.go)


def _wrap_int64(value: int) -> int:
    return (value + (1 << 63)) % (1 << 64) - (1 << 63)


def _go_key_less(a: str, b: str) -> bool:
    """go-yaml's `keyList.Less` for two string keys."""
    digits = False
    for i in range(min(len(a), len(b))):
        ca, cb = a[i], b[i]
        if ca == cb:
            digits = ca.isdecimal()
            continue
        la, lb = ca.isalpha(), cb.isalpha()
        if la and lb:
            return ca < cb
        if la or lb:
            return la if digits else lb
        an = bn = 0
        if ca == "0" or cb == "0":
            j = i - 1
            while j >= 0 and a[j].isdecimal():
                if a[j] != "0":
                    an = bn = 1
                    break
                j -= 1
        ai = i
        while ai < len(a) and a[ai].isdecimal():
            an = _wrap_int64(an * 10 + ord(a[ai]) - 48)
            ai += 1
        bi = i
        while bi < len(b) and b[bi].isdecimal():
            bn = _wrap_int64(bn * 10 + ord(b[bi]) - 48)
            bi += 1
        if an != bn:
            return an < bn
        if ai != bi:
            return ai < bi
        return ca < cb
    return len(a) < len(b)


def _go_key_compare(a: str, b: str) -> int:
    # Go reads each byte that is not UTF-8 (a surrogate here) as U+FFFD
    a, b = _SURROGATE.sub("\ufffd", a), _SURROGATE.sub("\ufffd", b)
    if _go_key_less(a, b):
        return -1
    return 1 if _go_key_less(b, a) else 0


_LETTERS_AND_DASHES = re.compile(r"[A-Za-z-]*")
_SORTED_KEYS: dict[tuple[str, ...], list[str]] = {}


def _sorted_keys(keys: Iterable[str]) -> list[str]:
    """Map keys in the order go-yaml writes them."""
    key = tuple(keys)
    done = _SORTED_KEYS.get(key)
    if done is None:
        if all(_LETTERS_AND_DASHES.fullmatch(k) for k in key):
            done = sorted(key)  # for these, go-yaml's order is plain code point order
        else:
            done = sorted(key, key=cmp_to_key(_go_key_compare))
        if len(_SORTED_KEYS) > 4096:
            _SORTED_KEYS.clear()
        _SORTED_KEYS[key] = done
    return done


# ---------------------------------------------------------------------------------------------
# Which strings a plain scalar would turn into something else (go-yaml's resolve + the extra
# quoting of its encoder: YAML 1.1 bools, base-60 numbers, the merge key)

_RESOLVE_FIRST = frozenset("+-.0123456789yYnNtTfFoO~<")
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
_DIGITS_OF_BASE = {
    2: re.compile(r"[01]+"),
    8: re.compile(r"[0-7]+"),
    10: re.compile(r"[0-9]+"),
    16: re.compile(r"[0-9a-fA-F]+"),
}


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


def _go_parse_uint(s: str, base: int) -> int | None:
    """strconv.ParseUint(s, base, 64) (base 0: Go prefixes, a leading 0 means octal)."""
    if not s:
        return None
    if base == 0:
        base = 10
        if s[0] == "0":
            prefix = s[1:2].lower()
            if len(s) >= 3 and prefix in ("b", "o", "x"):
                base = {"b": 2, "o": 8, "x": 16}[prefix]
                s = s[2:]
            else:
                base = 8
                s = s[1:]
                if not s:
                    return 0
    if not _DIGITS_OF_BASE[base].fullmatch(s):
        return None
    value = int(s, base)
    return value if value < 1 << 64 else None


def _go_parse_int(s: str, base: int) -> int | None:
    """strconv.ParseInt(s, base, 64)."""
    neg = s[:1] == "-"
    value = _go_parse_uint(s[1:] if s[:1] in ("-", "+") else s, base)
    if value is None or value > (1 << 63 if neg else _INT64_MAX):
        return None
    return -value if neg else value


def _is_finite_float(text: str) -> bool:
    value = float(text.replace("_", ""))
    return value not in (float("inf"), float("-inf"))


def _resolves_to_non_string(s: str) -> bool:
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
        if _go_parse_int(plain, 0) is not None:
            return True
    elif _go_parse_uint(plain, 0) is not None:
        return True
    if _YAML_STYLE_FLOAT.fullmatch(plain) and _is_finite_float(plain):
        return True
    for prefix, base in (("0b", 2), ("0o", 8)):
        if plain.startswith(prefix):
            if _go_parse_int(plain[2:], base) is not None:
                return True
            if _go_parse_uint(plain[2:], base) is not None:
                return True
        elif plain.startswith("-" + prefix) and _go_parse_int("-" + plain[3:], base) is not None:
            return True
    return ":" in s and _BASE60_FLOAT.fullmatch(s) is not None


# ---------------------------------------------------------------------------------------------
# Scalar styles (libyaml's analysis, as the format doc states it)

# printable in libyaml and not a line break (U+2028/U+2029 are double-quoted: see the doc)
_PRINTABLE_HIGH = "\\xa0-\\u2027\\u202a-\\ud7ff\\ue000-\\ufefe\\uff00-\\ufffd"
_PRINTABLE = "\\x20-\\x7e" + _PRINTABLE_HIGH
_PRINTABLE_NO_SPACE = "\\x21-\\x7e" + _PRINTABLE_HIGH
_PLAIN_OK = re.compile(
    r"(?![-?:](?: |\Z))"  # "- ", "? ", ": " (or the indicator alone) at the start
    r"(?![#,\[\]{}&*!|>'\"%@`])"  # an indicator as first character
    r"(?!---|\.\.\.)"  # document markers
    r"(?!.*(?:: | #))"  # a mapping value or a comment inside
    rf"[{_PRINTABLE_NO_SPACE}](?:[{_PRINTABLE}]*[{_PRINTABLE_NO_SPACE}])?"  # no edge spaces
    r"(?<!:)\Z"  # a final ":" reads as a mapping key
)
_SINGLE_OK = re.compile(rf"[{_PRINTABLE}]*\Z")
_NOT_IN_LITERAL = re.compile(rf"[^\t\n{_PRINTABLE}]")
_NEEDS_ESCAPE = re.compile(rf"[^\x20\x21\x23-\x5b\x5d-\x7e{_PRINTABLE_HIGH}]")
_NEEDS_RARE_ESCAPE = re.compile(rf"[^\t\n\r\x20-\x7e{_PRINTABLE_HIGH}]")
_ESCAPES = {
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


def _escape_char(c: str) -> str:
    known = _ESCAPES.get(c)
    if known is not None:
        return known
    v = ord(c)
    if v <= 0xFF:
        return f"\\x{v:02X}"
    if v <= 0xFFFF:
        return f"\\u{v:04X}"
    return f"\\U{v:08X}"


def _escape_match(m: re.Match[str]) -> str:
    return _escape_char(m.group())


def _double_quoted(s: str) -> str:
    """The text between double quotes. go-yaml's BOM test looks at the start of the value for
    every character, so a value starting with U+FEFF has every character escaped."""
    if s.startswith("\ufeff"):
        return "".join(map(_escape_char, s))
    if _NEEDS_ESCAPE.search(s) is None:
        return s
    # the common escapes by C-speed replaces (the backslash first), the rare ones by the regex
    s = s.replace("\\", "\\\\").replace('"', '\\"')
    s = s.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return _NEEDS_RARE_ESCAPE.sub(_escape_match, s)


def _surrogates_as_bytes(s: str) -> bytes:
    """A string holding lone surrogates (bytes that were not UTF-8, read with surrogateescape) as
    the bytes go-yaml would have had: they are written `!!binary`."""
    try:
        return s.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError as e:
        raise ValueError(f"cannot write a string holding a lone surrogate: {s!r}") from e


# Scalar texts as they follow a "key:" or "-" indicator, each ending with its line break.
_INLINE_CACHE: dict[str, str | None] = {}


def _inline_text(s: str) -> str | None:
    """The one-line scalar go-yaml writes for `s` (no `\\n` in it), with the leading space and the
    line break; None when `s` must be written `!!binary`."""
    if not s:
        return ' ""\n'
    if s[0] in _RESOLVE_FIRST and _resolves_to_non_string(s):
        pass  # go-yaml asks for double quotes straight away
    elif _PLAIN_OK.match(s):
        return " " + s + "\n"
    elif _SINGLE_OK.match(s):
        return " '" + s.replace("'", "''") + "'\n"
    if _SURROGATE.search(s):
        return None
    return ' "' + _double_quoted(s) + '"\n'


def _cached_inline_text(s: str) -> str | None:
    text = _INLINE_CACHE.get(s)
    if text is None:
        text = _inline_text(s)
        if len(s) <= 256:
            if len(_INLINE_CACHE) > 20000:
                _INLINE_CACHE.clear()
            _INLINE_CACHE[s] = text
    return text


def _literal_text(s: str, indent: int, hint: int) -> str:
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


def _binary_text(data: bytes, indent: int) -> str:
    encoded = base64.b64encode(data).decode("ascii")
    if len(encoded) < 70:
        return " !!binary " + encoded + "\n"
    pad = " " * indent
    lines = [pad + encoded[i : i + 70] + "\n" for i in range(0, len(encoded), 70)]
    return " !!binary |\n" + "".join(lines)


def _literal_allowed(s: str) -> bool:
    """libyaml allows a literal block without special characters and without a space at the end
    of a line (three C-speed scans rather than one regex with alternatives, for long bodies)."""
    return _NOT_IN_LITERAL.search(s) is None and " \n" not in s and not s.endswith(" ")


def _str_text(s: str, indent: int, hint: int) -> str:
    """A string value as go-yaml writes it after "key:" or "-": block content at column `indent`,
    `hint` columns right of the key or dash (go-yaml always writes its indent width there, which
    is wrong for a list item in the 4-space layout; this writes the right number)."""
    if "\n" not in s:
        text = _cached_inline_text(s)
        return text if text is not None else _binary_text(_surrogates_as_bytes(s), indent)
    if _literal_allowed(s):
        return _literal_text(s, indent, hint)
    if _SURROGATE.search(s):
        return _binary_text(_surrogates_as_bytes(s), indent)
    return ' "' + _double_quoted(s) + '"\n'


def _bytes_text(data: bytes, indent: int, hint: int) -> str:
    try:
        s = data.decode("utf-8")
    except UnicodeDecodeError:
        return _binary_text(data, indent)
    return _str_text(s, indent, hint)


_KEY_CACHE: dict[str, str | None] = {}


def _simple_key_text(key: str) -> str | None:
    """A map key as go-yaml writes it before ":", or None when go-yaml would not write it as a
    simple key (more than 128 bytes, a line break, or `!!binary`)."""
    text = _KEY_CACHE.get(key)
    if text is None and key not in _KEY_CACHE:
        if "\n" not in key and len(key.encode("utf-8", "surrogatepass")) <= 128:
            inline = _inline_text(key)
            if inline is not None and not any(c in key for c in "\r\x85\u2028\u2029"):
                text = inline[1:-1]
        if len(_KEY_CACHE) > 20000:
            _KEY_CACHE.clear()
        _KEY_CACHE[key] = text
    return text


# ---------------------------------------------------------------------------------------------
# The general emitter: a port of go-yaml's emitterc.go for block mappings and sequences of
# strings, empty flow collections and one-line flow mappings. Used for unknown keys, map keys
# that are not simple, and (in tests) as the reference for the fast writer.


class _FlowMap(tuple[tuple[str, str], ...]):
    """A one-line flow mapping of plain scalars (one `chunks` entry)."""

    __slots__ = ()


def _scalar_parts(value: object) -> tuple[str, str, str]:
    """(tag, style, text) go-yaml would use for a scalar value; style is one of plain, single,
    double, literal."""
    if isinstance(value, bool):
        return "", "plain", "true" if value else "false"
    if isinstance(value, int):
        return "", "plain", str(value)
    if value is None:
        return "", "plain", "null"
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            return _binary_parts(value)
    if not isinstance(value, str):
        raise TypeError(f"cannot write {type(value).__name__} in a cassette: {value!r}")
    if _SURROGATE.search(value):
        return _binary_parts(_surrogates_as_bytes(value))
    if isinstance(value, PlainText) and (not value or _PLAIN_OK.match(value)):
        return "", "plain", str(value)
    if "\n" in value:
        if _literal_allowed(value):
            return "", "literal", value
        return "", "double", value
    inline = _inline_text(value)
    assert inline is not None
    # a plain scalar never starts with a quote, so the first character tells the style
    style = {"'": "single", '"': "double"}.get(inline[1], "plain")
    return "", style, value


def _binary_parts(data: bytes) -> tuple[str, str, str]:
    encoded = base64.b64encode(data).decode("ascii")
    if len(encoded) < 70:
        return "!!binary", "plain", encoded
    lines = "".join(encoded[i : i + 70] + "\n" for i in range(0, len(encoded), 70))
    return "!!binary", "literal", lines


class _Emitter:
    __slots__ = ("best", "column", "compact", "indention", "out", "whitespace")

    def __init__(self, best: int, compact: bool) -> None:
        self.best = best
        self.compact = compact
        self.out: list[str] = []
        self.column = 0
        self.whitespace = True
        self.indention = True

    def text(self) -> str:
        """What was written, ending with a line break (as the next write_indent would add)."""
        if self.column > 0:
            self.out.append("\n")
            self.column = 0
        return "".join(self.out)

    def next_indent(self, indent: int) -> int:
        return self.best * ((indent + self.best) // self.best)

    def put_break(self) -> None:
        self.out.append("\n")
        self.column = 0
        self.indention = True

    def write_indent(self, indent: int) -> None:
        if (
            not self.indention
            or self.column > indent
            or (self.column == indent and not self.whitespace)
        ):
            self.put_break()
        if self.column < indent:
            self.out.append(" " * (indent - self.column))
            self.column = indent
        self.whitespace = True

    def indicator(self, text: str, need_ws: bool, is_ws: bool, is_indention: bool) -> None:
        if need_ws and not self.whitespace:
            self.out.append(" ")
            self.column += 1
        self.out.append(text)
        self.column += len(text)
        self.whitespace = is_ws
        self.indention = self.indention and is_indention

    def mapping(self, items: Iterable[tuple[object, object]], indent: int) -> None:
        """A block mapping whose keys sit at column `indent`."""
        for key, value in items:
            self.write_indent(indent)
            tag, style, text = _scalar_parts(key)
            simple = (
                style != "literal"
                and "\n" not in text
                and len(tag) + len(text.encode("utf-8")) <= 128
                and not any(c in text for c in "\r\x85\u2028\u2029")
            )
            if simple:
                if style == "plain" and not text:
                    style = "single"
                self.scalar(tag, style, text, self.next_indent(indent), indent)
                self.indicator(":", False, False, False)
            else:
                self.indicator("?", True, False, True)
                self.scalar(tag, style, text, self.next_indent(indent), indent)
                self.write_indent(indent)
                self.indicator(":", True, False, True)
            self.node(value, indent, in_sequence=False)

    def node(self, value: object, parent: int, in_sequence: bool) -> None:
        """A value inside the collection whose entries sit at column `parent`."""
        indent = parent + 2 if in_sequence else self.next_indent(parent)
        if isinstance(value, _FlowMap):
            self.indicator("{", True, True, False)
            for i, (k, v) in enumerate(value):
                if i:
                    self.indicator(",", False, False, False)
                self.plain(k)
                self.indicator(":", False, False, False)
                self.plain(v)
            self.indicator("}", False, False, False)
        elif isinstance(value, dict):
            if not value:
                self.indicator("{", True, True, False)
                self.indicator("}", False, False, False)
            else:
                self.mapping(value.items(), indent)
        elif isinstance(value, list | tuple):
            if not value:
                self.indicator("[", True, True, False)
                self.indicator("]", False, False, False)
                return
            compact = not in_sequence and (self.column == 0 or not self.indention) and self.compact
            if compact:
                indent -= 2
            for item in value:
                self.write_indent(indent)
                self.indicator("-", True, False, True)
                self.node(item, indent, in_sequence=True)
        else:
            self.scalar(*_scalar_parts(value), indent, parent)

    def plain(self, text: str) -> None:
        if text and not self.whitespace:
            self.out.append(" ")
            self.column += 1
        self.out.append(text)
        self.column += len(text)
        if text:
            self.whitespace = False
        self.indention = False

    def scalar(self, tag: str, style: str, text: str, indent: int, parent: int) -> None:
        """A scalar; block content at column `indent`, its key or dash at column `parent`."""
        if tag:
            if not self.whitespace:
                self.out.append(" ")
                self.column += 1
            self.out.append(tag)
            self.column += len(tag)
            self.whitespace = False
            self.indention = False
        if style == "plain":
            self.plain(text)
            return
        if style in ("single", "double"):
            quote = "'" if style == "single" else '"'
            inner = text.replace("'", "''") if style == "single" else _double_quoted(text)
            self.indicator(quote, True, False, False)
            self.out.append(inner)
            self.column += len(inner)
            self.indicator(quote, False, False, False)
            return
        self.indicator("|", True, False, False)
        if text[0] in " \n\t":
            self.indicator(str(indent - parent), False, False, False)
        if text[-1] != "\n":
            self.indicator("-", False, False, False)
        elif len(text) == 1 or text[-2] == "\n":
            self.indicator("+", False, False, False)
        self.put_break()
        self.whitespace = True
        lines = text.split("\n")
        for i, line in enumerate(lines):
            if line:
                self.write_indent(indent)
                self.out.append(line)
                self.column += len(line)
                self.indention = False
            if i < len(lines) - 1:
                self.put_break()


# ---------------------------------------------------------------------------------------------
# The writer


@dataclass(frozen=True, slots=True)
class _Layout:
    """Columns and constant prefixes of one Style."""

    style: Style
    best: int
    compact: bool
    item: str  # "- id:" of an interaction, at its column
    entry: int  # column of id/request/response
    request: str
    response: str
    field: int  # column of the request/response keys
    keys: dict[str, str]  # "<pad>key:" for every request/response key
    value: int  # block content of a request/response scalar; column of header names
    list_item: str  # "<pad>-" of a transfer_encoding or chunks entry
    header_item: str  # "<pad>-" of a header value
    header_value: int  # block content of a header value

    @staticmethod
    @lru_cache(maxsize=16)
    def of(style: Style) -> _Layout:
        best = style.indent
        if not 2 <= best <= 9:
            raise ValueError(f"unsupported cassette indent {best} (2 or 4)")
        compact = best == 2  # charm's marshaller: SetIndent(2) + CompactSeqIndent
        dash = 2 if compact else 0

        def nxt(i: int) -> int:
            return best * ((i + best) // best)

        seq = nxt(0) - dash
        entry = seq + 2
        fields = nxt(entry)
        value = nxt(fields)
        header_seq = nxt(value) - dash
        names = ("proto", "proto_major", "proto_minor", "content_length", "transfer_encoding")
        names += ("trailer", "host", "remote_addr", "request_uri", "body", "form", "headers")
        names += ("url", "method", "uncompressed", "status", "code", "duration", "chunks")
        return _Layout(
            style=style,
            best=best,
            compact=compact,
            item=" " * seq + "- id:",
            entry=entry,
            request=" " * entry + "request:",
            response=" " * entry + "response:",
            field=fields,
            keys={name: " " * fields + name + ":" for name in names},
            value=value,
            list_item=" " * (nxt(fields) - dash) + "-",
            header_item=" " * header_seq + "-",
            header_value=header_seq + 2,
        )


def _general_entries(layout: _Layout, items: Iterable[tuple[object, object]], indent: int) -> str:
    emitter = _Emitter(layout.best, layout.compact)
    emitter.mapping(items, indent)
    return emitter.text()


def _write_string_lists(out: list[str], layout: _Layout, key: str, lists: Headers) -> None:
    """`key:` and a map of string lists (headers, form, trailer) with go-yaml's key order."""
    if not lists:
        out.append(layout.keys[key] + " {}\n")
        return
    out.append(layout.keys[key] + "\n")
    pad = " " * layout.value
    item = layout.header_item
    value_indent = layout.header_value
    for name in _sorted_keys(lists):
        values = lists[name]
        name_text = _simple_key_text(name)
        if name_text is None:
            out.append(_general_entries(layout, [(name, list(values))], layout.value))
        elif not values:
            out.append(pad + name_text + ": []\n")
        else:
            out.append(pad + name_text + ":\n")
            for v in values:
                out.append(item)
                out.append(_str_text(v, value_indent, 2))


def _write_string_list(out: list[str], layout: _Layout, key: str, values: list[str]) -> None:
    if not values:
        out.append(layout.keys[key] + " []\n")
        return
    out.append(layout.keys[key] + "\n")
    indent = len(layout.list_item) + 1
    for v in values:
        out.append(layout.list_item)
        out.append(_str_text(v, indent, 2))


def _write_request(out: list[str], layout: _Layout, r: Request) -> None:
    keys = layout.keys
    full = not layout.style.omit_empty
    hint = layout.value - layout.field  # the indentation indicator of a block value
    out.append(keys["proto"] + _str_text(r.proto, layout.value, hint))
    out.append(f"{keys['proto_major']} {int(r.proto_major)}\n")
    out.append(f"{keys['proto_minor']} {int(r.proto_minor)}\n")
    out.append(f"{keys['content_length']} {int(r.content_length)}\n")
    if full or r.transfer_encoding:
        _write_string_list(out, layout, "transfer_encoding", r.transfer_encoding)
    if full or r.trailer:
        _write_string_lists(out, layout, "trailer", r.trailer)
    out.append(keys["host"] + _str_text(r.host, layout.value, hint))
    if full or r.remote_addr:
        out.append(keys["remote_addr"] + _str_text(r.remote_addr, layout.value, hint))
    if full or r.request_uri:
        out.append(keys["request_uri"] + _str_text(r.request_uri, layout.value, hint))
    if full or r.body:
        out.append(keys["body"] + _bytes_text(r.body, layout.value, hint))
    if full or r.form:
        _write_string_lists(out, layout, "form", r.form)
    if full or r.headers:
        _write_string_lists(out, layout, "headers", r.headers)
    out.append(keys["url"] + _str_text(r.url, layout.value, hint))
    out.append(keys["method"] + _str_text(r.method, layout.value, hint))
    if r.extra:
        out.append(_general_entries(layout, r.extra.items(), layout.field))


def _write_response(out: list[str], layout: _Layout, r: Response) -> None:
    keys = layout.keys
    full = not layout.style.omit_empty
    hint = layout.value - layout.field  # the indentation indicator of a block value
    out.append(keys["proto"] + _str_text(r.proto, layout.value, hint))
    out.append(f"{keys['proto_major']} {int(r.proto_major)}\n")
    out.append(f"{keys['proto_minor']} {int(r.proto_minor)}\n")
    if full or r.transfer_encoding:
        _write_string_list(out, layout, "transfer_encoding", r.transfer_encoding)
    if full or r.trailer:
        _write_string_lists(out, layout, "trailer", r.trailer)
    out.append(f"{keys['content_length']} {int(r.content_length)}\n")
    if full or r.uncompressed:
        out.append(keys["uncompressed"] + (" true\n" if r.uncompressed else " false\n"))
    out.append(keys["body"] + _bytes_text(r.body, layout.value, hint))
    _write_string_lists(out, layout, "headers", r.headers)
    out.append(keys["status"] + _str_text(r.status, layout.value, hint))
    out.append(f"{keys['code']} {int(r.code)}\n")
    out.append(keys["duration"] + _str_text(format_duration(r.duration), layout.value, hint))
    if r.chunks is not None:
        if not r.chunks:
            out.append(keys["chunks"] + " []\n")
        else:
            out.append(keys["chunks"] + "\n")
            item = layout.list_item
            for chunk in r.chunks:
                at = format_duration(_round_to_ms(chunk.at))
                out.append(f"{item} {{at: {at}, size: {int(chunk.size)}}}\n")
    if r.extra:
        out.append(_general_entries(layout, r.extra.items(), layout.field))


def _write_interactions(out: list[str], layout: _Layout, items: Sequence[Interaction], first: int):
    for n, interaction in enumerate(items, first):
        out.append(f"{layout.item} {n}\n")
        out.append(layout.request + "\n")
        _write_request(out, layout, interaction.request)
        out.append(layout.response + "\n")
        _write_response(out, layout, interaction.response)
        if interaction.extra:
            out.append(_general_entries(layout, interaction.extra.items(), layout.entry))


def dumps(cassette: Cassette) -> bytes:
    """The cassette as go-vcr's YAML in the cassette's Style; ids renumbered 0..n-1."""
    layout = _Layout.of(cassette.style)
    out = ["---\nversion: 2\n"]
    if cassette.extra:
        out.append(_general_entries(layout, cassette.extra.items(), 0))
    if cassette.interactions:
        out.append("interactions:\n")
        _write_interactions(out, layout, cassette.interactions, 0)
    else:
        out.append(EMPTY_INTERACTIONS_LINE.decode("ascii"))
    return "".join(out).encode("utf-8")


def dump_interactions(items: Sequence[Interaction], style: Style, first_id: int) -> bytes:
    """The YAML of `items` as entries of `interactions:`, ids first_id.., exactly the bytes dumps()
    writes for them, so they can be appended to a cassette file's bytes (after turning a final
    `interactions: []` line into `interactions:`)."""
    out: list[str] = []
    _write_interactions(out, _Layout.of(style), items, first_id)
    return "".join(out).encode("utf-8")


def _string_lists_value(lists: Headers) -> dict[str, list[str]]:
    return {name: list(lists[name]) for name in _sorted_keys(lists)}


def _reference_dumps(cassette: Cassette) -> bytes:
    """dumps() through the general emitter only: the reference the fast writer is tested against."""
    style = cassette.style
    full = not style.omit_empty
    items = []
    for n, it in enumerate(cassette.interactions):
        q, s = it.request, it.response
        request: dict[str, object] = {
            "proto": q.proto,
            "proto_major": q.proto_major,
            "proto_minor": q.proto_minor,
            "content_length": q.content_length,
        }
        optional: list[tuple[str, object]] = [
            ("transfer_encoding", list(q.transfer_encoding)),
            ("trailer", _string_lists_value(q.trailer)),
        ]
        request.update((k, v) for k, v in optional if full or v)
        request["host"] = q.host
        optional = [
            ("remote_addr", q.remote_addr),
            ("request_uri", q.request_uri),
            ("body", q.body),
            ("form", _string_lists_value(q.form)),
            ("headers", _string_lists_value(q.headers)),
        ]
        request.update((k, v) for k, v in optional if full or v)
        request.update(url=q.url, method=q.method, **q.extra)
        response: dict[str, object] = {
            "proto": s.proto,
            "proto_major": s.proto_major,
            "proto_minor": s.proto_minor,
        }
        optional = [
            ("transfer_encoding", list(s.transfer_encoding)),
            ("trailer", _string_lists_value(s.trailer)),
        ]
        response.update((k, v) for k, v in optional if full or v)
        response["content_length"] = s.content_length
        if full or s.uncompressed:
            response["uncompressed"] = s.uncompressed
        response.update(
            body=s.body,
            headers=_string_lists_value(s.headers),
            status=s.status,
            code=s.code,
            duration=format_duration(s.duration),
        )
        if s.chunks is not None:
            response["chunks"] = [
                _FlowMap((("at", format_duration(_round_to_ms(c.at))), ("size", str(c.size))))
                for c in s.chunks
            ]
        response.update(s.extra)
        items.append({"id": n, "request": request, "response": response, **it.extra})
    root: dict[str, object] = {"version": 2, **cassette.extra, "interactions": items}
    emitter = _Emitter(style.indent, style.indent == 2)
    emitter.mapping(root.items(), 0)
    return ("---\n" + emitter.text()).encode("utf-8")


# ---------------------------------------------------------------------------------------------
# The reader

_STR_TAG = "tag:yaml.org,2002:str"
_INT_TAG = "tag:yaml.org,2002:int"
_BOOL_TAG = "tag:yaml.org,2002:bool"
_BINARY_TAG = "tag:yaml.org,2002:binary"
_NULLS = frozenset(("", "~", "null", "Null", "NULL"))
_TRUE = frozenset(["true", "True", "TRUE", "y", "Y", "yes", "Yes", "YES", "on", "On", "ON"])
_FALSE = frozenset(["false", "False", "FALSE", "n", "N", "no", "No", "NO", "off", "Off", "OFF"])


class _FieldError(Exception):
    """A bad value: the node where it is, and the message; the path is added on the way up."""

    def __init__(self, node: Node | None, message: str, path: str = "") -> None:
        super().__init__(message)
        self.node = node
        self.message = message
        self.path = path

    def under(self, name: str) -> _FieldError:
        self.path = f"{name}.{self.path}" if self.path else name
        return self


def _kind(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    return "a scalar"


def _is_null(node: ScalarNode) -> bool:
    return not node.style and node.tag == _STR_TAG and node.value in _NULLS


def _decode_binary(node: ScalarNode) -> bytes:
    text = node.value.replace("\n", "").replace("\r", "")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _FieldError(node, "!!binary value is not base64") from None


def _read_text(node: Node) -> str:
    if type(node) is not ScalarNode:
        raise _FieldError(node, f"expected a string, found {_kind(node)}")
    if node.tag == _BINARY_TAG:
        return _decode_binary(node).decode("utf-8", "surrogateescape")
    if not node.style and node.value in _NULLS:
        return ""
    return node.value


def _read_body(node: Node) -> bytes:
    if type(node) is not ScalarNode:
        raise _FieldError(node, f"expected a string, found {_kind(node)}")
    if node.tag == _BINARY_TAG:
        return _decode_binary(node)
    value = node.value
    if not node.style and value in _NULLS:
        return b""
    try:
        return value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise _FieldError(node, "string holds a lone surrogate") from None


def _go_int(text: str) -> int | None:
    """yaml.v3's reading of a plain integer: Go prefixes, `_` separators, int64 or uint64."""
    plain = text.replace("_", "")
    if plain[:1] in ("+", "-"):
        return _go_parse_int(plain, 0)
    return _go_parse_uint(plain, 0)


def _read_int(node: Node) -> int:
    if type(node) is not ScalarNode:
        raise _FieldError(node, f"expected an integer, found {_kind(node)}")
    value = node.value
    if node.style and node.tag != _INT_TAG:
        raise _FieldError(
            node, f"quoted integer {node.style}{value}{node.style} (go-vcr needs a plain number)"
        )
    if _is_null(node):
        return 0
    number = _go_int(value) if node.tag in (_STR_TAG, _INT_TAG) else None
    if number is None:
        raise _FieldError(node, f"expected an integer, found {value!r}")
    return number


def _read_bool(node: Node) -> bool:
    if type(node) is not ScalarNode:
        raise _FieldError(node, f"expected true or false, found {_kind(node)}")
    if node.style and node.tag != _BOOL_TAG:
        raise _FieldError(node, f"quoted bool {node.value!r} (go-vcr needs a plain true or false)")
    if _is_null(node):
        return False
    if node.value in _TRUE:
        return True
    if node.value in _FALSE:
        return False
    raise _FieldError(node, f"expected true or false, found {node.value!r}")


def _read_duration(node: Node) -> int:
    text = _read_text(node)
    try:
        return parse_duration(text)
    except ValueError as e:
        raise _FieldError(node, f"{e} (Go duration syntax expected, such as 1.5s)") from None


def _read_string_list(node: Node) -> list[str]:
    if type(node) is SequenceNode:
        out = []
        for item in node.value:
            if type(item) is ScalarNode and item.tag == _STR_TAG and item.style:
                out.append(item.value)
            else:
                out.append(_read_text(item))
        return out
    if type(node) is ScalarNode and _is_null(node):
        return []
    raise _FieldError(node, f"expected a list of strings, found {_kind(node)}")


def _read_string_lists(node: Node) -> Headers:
    if type(node) is not MappingNode:
        if type(node) is ScalarNode and _is_null(node):
            return {}
        raise _FieldError(node, f"expected a map of string lists, found {_kind(node)}")
    out: Headers = {}
    for key_node, value_node in node.value:
        name = _read_text(key_node)
        if name in out:
            raise _FieldError(key_node, f"duplicate key {name!r}")
        if type(value_node) is ScalarNode and not _is_null(value_node):
            raise _FieldError(
                value_node, f"a scalar where a list of strings belongs ({value_node.value!r})"
            ).under(name)
        try:
            out[name] = _read_string_list(value_node)
        except _FieldError as e:
            raise e.under(name) from None
    return out


def _read_chunks(node: Node) -> list[Chunk]:
    if type(node) is not SequenceNode:
        raise _FieldError(node, f"expected a list of {{at, size}} entries, found {_kind(node)}")
    chunks = []
    for item in node.value:
        if type(item) is not MappingNode:
            raise _FieldError(item, f"expected an {{at, size}} entry, found {_kind(item)}")
        at = size = None
        for key_node, value_node in item.value:
            key = _read_text(key_node)
            if key == "at" and at is None:
                at = _read_duration(value_node)
            elif key == "size" and size is None:
                size = _read_int(value_node)
                if size < 0:
                    raise _FieldError(value_node, f"negative chunk size {size}")
            else:
                raise _FieldError(key_node, f"unexpected key {key!r} in a chunks entry")
        if at is None or size is None:
            raise _FieldError(item, "a chunks entry needs both at and size")
        chunks.append(Chunk(at, size))
    return chunks


_Reader = Callable[[Node], object]
_REQUEST_FIELDS: dict[str, _Reader] = {
    "proto": _read_text,
    "proto_major": _read_int,
    "proto_minor": _read_int,
    "content_length": _read_int,
    "transfer_encoding": _read_string_list,
    "trailer": _read_string_lists,
    "host": _read_text,
    "remote_addr": _read_text,
    "request_uri": _read_text,
    "body": _read_body,
    "form": _read_string_lists,
    "headers": _read_string_lists,
    "url": _read_text,
    "method": _read_text,
}
_REQUEST_REQUIRED = frozenset(("proto", "proto_major", "proto_minor", "content_length", "host"))
_REQUEST_REQUIRED |= {"url", "method"}
_REQUEST_OPTIONAL = frozenset(_REQUEST_FIELDS) - _REQUEST_REQUIRED
_RESPONSE_FIELDS: dict[str, _Reader] = {
    "proto": _read_text,
    "proto_major": _read_int,
    "proto_minor": _read_int,
    "transfer_encoding": _read_string_list,
    "trailer": _read_string_lists,
    "content_length": _read_int,
    "uncompressed": _read_bool,
    "body": _read_body,
    "headers": _read_string_lists,
    "status": _read_text,
    "code": _read_int,
    "duration": _read_duration,
    "chunks": _read_chunks,
}
_RESPONSE_OPTIONAL = frozenset(("transfer_encoding", "trailer", "uncompressed", "chunks"))
_RESPONSE_REQUIRED = frozenset(_RESPONSE_FIELDS) - _RESPONSE_OPTIONAL


def _read_extra(node: Node) -> object:
    """An unknown key's value as plain Python data, keeping which scalars were plain."""
    if type(node) is ScalarNode:
        if node.tag == _BINARY_TAG:
            return _decode_binary(node)
        if not node.style and _resolves_to_non_string(node.value):
            return PlainText(node.value)
        return node.value
    if type(node) is SequenceNode:
        return [_read_extra(item) for item in node.value]
    out: dict[str, object] = {}
    for key_node, value_node in node.value:
        key = _read_text(key_node)
        if key in out:
            raise _FieldError(key_node, f"duplicate key {key!r}")
        if not key_node.style and _resolves_to_non_string(key):
            key = PlainText(key)
        out[key] = _read_extra(value_node)
    return out


class _Loader(_YamlLoader):  # type: ignore[misc, valid-type]
    """The type-free loader, without path resolvers (none are registered) for speed."""

    def resolve(self, kind: type, value: object, implicit: object) -> str:
        if kind is ScalarNode:
            return _STR_TAG
        return "tag:yaml.org,2002:seq" if kind is SequenceNode else "tag:yaml.org,2002:map"

    def descend_resolver(self, current_node: object, current_index: object) -> None:
        return None

    def ascend_resolver(self) -> None:
        return None


class _Conversion:
    """Nodes to a Cassette; remembers whether the file has the every-key shape."""

    def __init__(self) -> None:
        self.full_shape = False

    def section(
        self,
        node: Node,
        target: Request | Response,
        fields: dict[str, _Reader],
        required: frozenset[str],
        optional: frozenset[str],
    ) -> None:
        if type(node) is not MappingNode:
            raise _FieldError(node, f"expected a mapping, found {_kind(node)}")
        seen = set()
        extra = target.extra
        for key_node, value_node in node.value:
            key = key_node.value if type(key_node) is ScalarNode else _read_text(key_node)
            if key in seen:
                raise _FieldError(key_node, f"duplicate key {key!r}")
            seen.add(key)
            reader = fields.get(key)
            try:
                if reader is None:
                    extra[key] = _read_extra(value_node)
                    continue
                value = reader(value_node)
            except _FieldError as e:
                raise e.under(key) from None
            setattr(target, key, value)
            if key in optional and not value and key != "chunks":
                self.full_shape = True
        missing = required - seen
        if missing:
            names = ", ".join(sorted(missing))
            raise _FieldError(node, f"missing key{'s' if len(missing) > 1 else ''} {names}")

    def interaction(self, node: Node, index: int) -> Interaction:
        if type(node) is not MappingNode:
            raise _FieldError(node, f"an interaction must be a mapping, found {_kind(node)}")
        request = response = None
        interaction = Interaction(Request(), Response(), index)
        seen = set()
        for key_node, value_node in node.value:
            key = _read_text(key_node)
            if key in seen:
                raise _FieldError(key_node, f"duplicate key {key!r}")
            seen.add(key)
            try:
                if key == "request":
                    request = interaction.request
                    self.section(
                        value_node, request, _REQUEST_FIELDS, _REQUEST_REQUIRED, _REQUEST_OPTIONAL
                    )
                elif key == "response":
                    response = interaction.response
                    self.section(
                        value_node,
                        response,
                        _RESPONSE_FIELDS,
                        _RESPONSE_REQUIRED,
                        _RESPONSE_OPTIONAL,
                    )
                elif key == "id":
                    interaction.id = _read_int(value_node)
                else:
                    interaction.extra[key] = _read_extra(value_node)
            except _FieldError as e:
                raise e.under(key) from None
        if request is None or response is None:
            raise _FieldError(node, f"missing key {'request' if request is None else 'response'}")
        return interaction


def _check_no_aliases(root: Node, text: bytes | str, path: str | None) -> None:
    """Refuse aliases: the composer shares an aliased node, so a node met twice is one. Walking
    the shared graph stops at the first repeat: an alias bomb costs its size, not its expansion."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        ident = id(node)
        if ident in seen:
            raise CassetteError(
                "YAML aliases (*name) are not allowed in a cassette", path, _alias_line(text)
            )
        seen.add(ident)
        if type(node) is MappingNode:
            for pair in node.value:
                stack.extend(pair)
        elif type(node) is SequenceNode:
            stack.extend(node.value)


def _alias_line(text: bytes | str) -> int | None:
    """The line of the first alias, from the event stream (error path only)."""
    try:
        loader = _YamlLoader(text)
    except yaml.YAMLError:
        return None
    try:
        while True:
            event = loader.get_event()
            if event is None:
                return None
            if isinstance(event, yaml.AliasEvent):
                return event.start_mark.line + 1
    except yaml.YAMLError:
        return None
    finally:
        loader.dispose()


def _compose(data: bytes | str, path: str | None) -> Node | None:
    loader = None
    try:
        loader = _Loader(data)  # the pure-Python reader checks the characters here
        return loader.get_single_node()
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        problem = e.problem or "syntax error"
        if e.context:
            problem = f"{problem} ({e.context})"
        raise CassetteError(
            f"not valid YAML: {problem}", path, mark.line + 1 if mark else None
        ) from None
    except yaml.YAMLError as e:
        line = None
        position = getattr(e, "position", None)
        if isinstance(position, int):
            line = data[:position].count(b"\n" if isinstance(data, bytes) else "\n") + 1
        reason = getattr(e, "reason", None) or str(e)
        raise CassetteError(f"not valid YAML: {reason}", path, line) from None
    except RecursionError:
        raise CassetteError("not valid YAML: nested too deeply", path) from None
    finally:
        if loader is not None:
            loader.dispose()


def _block_scalar_indent(node: ScalarNode, data: bytes | str) -> int:
    """The indentation of a literal or folded block (error-free files only): its indicator, else
    the leading spaces of its first non-empty line."""
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    lines = text.split("\n", node.end_mark.line + 1)[node.start_mark.line : node.end_mark.line + 1]
    digits = [c for c in lines[0][node.start_mark.column :].split("#")[0] if c.isdigit()]
    if digits:
        return int(digits[0])
    for line in lines[1:]:
        if line.strip(" \r"):
            return len(line) - len(line.lstrip(" "))
    return 0


def _detect_indent(root: MappingNode, data: bytes | str) -> int:
    """The indent width of a file, from where its first nested block starts: the dash of a
    top-level block list (column 0 in charm's compact layout, 4 in go-vcr's) or the keys of a
    top-level block mapping (column 2 or 4), the interactions first; 2 when nothing tells."""
    values = [value for key, value in root.value if key.value == "interactions"]
    values += [value for key, value in root.value if key.value != "interactions"]
    for node in values:
        if type(node) is ScalarNode:
            if node.style in ("|", ">"):
                return 4 if _block_scalar_indent(node, data) >= 4 else 2
        elif node.value and not node.flow_style:
            return 4 if node.start_mark.column >= 4 else 2
    return 2


def _check_chunks(interactions: list[Interaction], path: str | None) -> None:
    for n, interaction in enumerate(interactions):
        response = interaction.response
        if response.chunks is None:
            continue
        total = sum(chunk.size for chunk in response.chunks)
        if total != len(response.body):
            where = f"{path}: " if path else ""
            warnings.warn(
                f"{where}interactions[{n}].response.chunks: sizes add up to {total} bytes but the "
                f"body has {len(response.body)}; ignoring the chunks key",
                CassetteWarning,
                stacklevel=3,
            )
            response.chunks = None


# ---------------------------------------------------------------------------------------------
# The fast reader: a file in the writer's own form, read line by line and accepted only when the
# writer gives back its exact bytes. Anything else goes to the full reader.


class _NotCanonical(ValueError):
    """The fast reader met text the writer would not write: the full reader takes over."""


# what the fast reader may raise on text it does not expect (UnicodeError and binascii.Error
# are ValueErrors)
_GIVE_UP = (ValueError, IndexError, KeyError, TypeError, OverflowError)
_FAST_HEAD = b"---\nversion: 2\ninteractions:\n"
_FAST_EMPTY = b"---\nversion: 2\n" + EMPTY_INTERACTIONS_LINE
_VERIFY_BATCH = 256  # interactions written at a time when checking the bytes
_CACHED_LINE = 256  # longest scalar line whose value is shared between equal lines
_BLOCK_HEAD = re.compile(rb" \|[1-9]?([-+]?)\n")
_CHUNK_ENTRY = re.compile(rb" \{at: ([^,\n]+), size: ([0-9]+)\}\n")
# Exact decimal arithmetic here gives Go's float64 result for every text format_duration writes
# (at most 9 significant fraction digits against the unit), and the write-back check catches any
# other text.
_SIMPLE_DURATION = re.compile(rb" ([0-9]{1,12})(?:\.([0-9]{1,9}))?(ns|\xc2\xb5s|ms|s)")
_NS_PER_UNIT_BYTES = {b"ns": 1, "\u00b5s".encode(): 1_000, b"ms": 1_000_000, b"s": 1_000_000_000}
_UNESCAPE = re.compile(r"\\(?:x([0-9A-F]{2})|u([0-9A-F]{4})|U([0-9A-F]{8})|(.))", re.S)
_UNESCAPED = {escape[1]: c for c, escape in _ESCAPES.items()}


def _unescape_match(m: re.Match[str]) -> str:
    digits = m[1] or m[2] or m[3]
    if digits:
        return chr(int(digits, 16))
    c = _UNESCAPED.get(m[4])
    if c is None:
        raise _NotCanonical(m[0])
    return c


def _quoted(line: bytes, quote: bytes) -> bytes:
    if len(line) < 3 or not line.endswith(quote):
        raise _NotCanonical(line)
    return line[2:-1]


def _scalar_body(line: bytes) -> bytes:
    """A one-line scalar after "key:" (`line` starts with its space) as bytes."""
    first = line[1:2]
    if first == b"'":
        return _quoted(line, b"'").replace(b"''", b"'")
    if first == b'"':
        inner = _quoted(line, b'"').decode("utf-8")
        return _UNESCAPE.sub(_unescape_match, inner).encode("utf-8")
    if line.startswith(b" !!binary "):
        return base64.b64decode(line[10:], validate=True)
    if first != b" " and line[:1] == b" ":
        return line[1:]
    raise _NotCanonical(line)


def _scalar_text(line: bytes) -> str:
    """A one-line scalar after "key:" or "-" (`line` starts with its space) as a string."""
    first = line[1:2]
    if first == b"'":
        return _quoted(line, b"'").decode("utf-8").replace("''", "'")
    if first == b'"':
        return _UNESCAPE.sub(_unescape_match, _quoted(line, b'"').decode("utf-8"))
    if line.startswith(b" !!binary "):
        return base64.b64decode(line[10:], validate=True).decode("utf-8", "surrogateescape")
    if first != b" " and line[:1] == b" ":
        return line[1:].decode("utf-8")
    raise _NotCanonical(line)


@lru_cache(maxsize=32)
def _block_end(indent: int) -> re.Pattern[bytes]:
    """The line break before the first line that is neither empty nor indented `indent`."""
    return re.compile(rb"\n(?!\n| {%d})" % indent)


class _FastReader:
    """Reads the interactions of a file in one layout; values with equal text come back as one
    shared object (strings of short lines, header/form/trailer maps)."""

    def __init__(self, data: bytes, layout: _FastLayout) -> None:
        self.data = data
        self.full_shape = False
        self.item = layout.item
        self.request = layout.request
        self.response = layout.response
        self.value = layout.value
        self.value_pad = layout.value_pad
        self.list_item = layout.list_item
        self.list_value = layout.list_value
        self.header_item = layout.header_item
        self.header_value = layout.header_value
        self.value_end = layout.value_end
        self.request_keys = layout.request_keys
        self.response_keys = layout.response_keys
        self.strings: dict[bytes, str] = {}
        self.maps: dict[bytes, Headers] = {}
        self.durations: dict[str, int] = {}

    def interactions(self, pos: int) -> list[Interaction]:
        data = self.data
        size = len(data)
        item, request_line, response_line = self.item, self.request, self.response
        request_keys, response_keys = self.request_keys, self.response_keys
        section = self.section
        out = []
        while pos < size:
            if not data.startswith(item, pos):
                raise _NotCanonical(pos)
            end = data.index(b"\n", pos)
            ident = int(data[pos + len(item) : end])
            pos = end + 1
            if not data.startswith(request_line, pos):
                raise _NotCanonical(pos)
            request, pos = section(pos + len(request_line), request_keys)
            if not data.startswith(response_line, pos):
                raise _NotCanonical(pos)
            response, pos = section(pos + len(response_line), response_keys)
            out.append(Interaction(Request(**request), Response(**response), ident))
        return out

    def section(self, pos: int, keys: tuple[_KeyReader, ...]) -> tuple[dict[str, object], int]:
        """The known keys of a request or response, in the writer's order."""
        data = self.data
        values = {}
        for name, prefix, read, optional in keys:
            if data.startswith(prefix, pos):
                value, pos = read(self, pos + len(prefix))
                values[name] = value
                if optional and not value:
                    self.full_shape = True
        return values, pos

    def block(self, pos: int, indent: int) -> tuple[bytes, int]:
        """A literal block (`|`, or base64 after `!!binary |`) at `pos`, content at `indent`."""
        data = self.data
        binary = data.startswith(b" !!binary |\n", pos)
        if binary:
            start = pos + 12
            chomp = b""
        else:
            head = _BLOCK_HEAD.match(data, pos)
            if head is None:
                raise _NotCanonical(pos)
            start = head.end()
            chomp = head[1]
        found = _block_end(indent).search(data, start - 1)
        if found is None:
            raise _NotCanonical(pos)
        end = found.start() + 1
        # every line of the block is empty or starts with the indentation: drop the first line's
        # with the slice, the others' with one replace
        pad = b" " * indent
        if data.startswith(pad, start):
            start += indent
        content = data[start:end].replace(b"\n" + pad, b"\n")
        if binary:
            return base64.b64decode(content.replace(b"\n", b""), validate=True), end
        if chomp == b"-":
            content = content.rstrip(b"\n")
        elif not chomp:
            content = content.rstrip(b"\n") + b"\n" if content.strip(b"\n") else b""
        return content, end

    def text(self, pos: int, indent: int) -> tuple[str, int]:
        """A string value after "key:" or "-" at `pos`, block content at `indent`."""
        data = self.data
        end = data.index(b"\n", pos)
        line = data[pos:end]
        value = self.strings.get(line)
        if value is not None:
            return value, end + 1
        if line.startswith(b" |") or line == b" !!binary |":
            content, end = self.block(pos, indent)
            if line == b" !!binary |":
                return content.decode("utf-8", "surrogateescape"), end
            return content.decode("utf-8"), end
        value = _scalar_text(line)
        if len(line) <= _CACHED_LINE:
            self.strings[line] = value
        return value, end + 1

    def text_field(self, pos: int) -> tuple[str, int]:
        return self.text(pos, self.value)

    def int_field(self, pos: int) -> tuple[int, int]:
        end = self.data.index(b"\n", pos)
        return int(self.data[pos:end]), end + 1

    def bool_field(self, pos: int) -> tuple[bool, int]:
        if self.data.startswith(b" true\n", pos):
            return True, pos + 6
        if self.data.startswith(b" false\n", pos):
            return False, pos + 7
        raise _NotCanonical(pos)

    def body(self, pos: int) -> tuple[bytes, int]:
        data = self.data
        end = data.index(b"\n", pos)
        if data.startswith(b" |", pos) or data.startswith(b" !!binary |\n", pos):
            return self.block(pos, self.value)
        return _scalar_body(data[pos:end]), end + 1

    def duration(self, pos: int) -> tuple[int, int]:
        data = self.data
        end = data.index(b"\n", pos)
        simple = _SIMPLE_DURATION.fullmatch(data, pos, end)
        if simple is not None:  # the form format_duration writes below a minute
            whole, frac, unit = simple.groups()
            ns = int(whole) * _NS_PER_UNIT_BYTES[unit]
            if frac:
                ns += int(frac) * _NS_PER_UNIT_BYTES[unit] // 10 ** len(frac)
            return ns, end + 1
        text, pos = self.text(pos, self.value)
        return self.parsed_duration(text), pos

    def parsed_duration(self, text: str) -> int:
        ns = self.durations.get(text)
        if ns is None:
            ns = self.durations[text] = parse_duration(text)
        return ns

    def string_list(self, pos: int) -> tuple[list[str], int]:
        data = self.data
        if data.startswith(b" []\n", pos):
            return [], pos + 4
        if data[pos : pos + 1] != b"\n":
            raise _NotCanonical(pos)
        pos += 1
        item, indent = self.list_item, self.list_value
        values = []
        while data.startswith(item, pos):
            value, pos = self.text(pos + len(item), indent)
            values.append(value)
        return values, pos

    def chunks(self, pos: int) -> tuple[list[Chunk], int]:
        data = self.data
        if data.startswith(b" []\n", pos):
            return [], pos + 4
        if data[pos : pos + 1] != b"\n":
            raise _NotCanonical(pos)
        pos += 1
        item = self.list_item
        out = []
        while data.startswith(item, pos):
            entry = _CHUNK_ENTRY.match(data, pos + len(item))
            if entry is None:
                raise _NotCanonical(pos)
            out.append(Chunk(self.parsed_duration(entry[1].decode("utf-8")), int(entry[2])))
            pos = entry.end()
        return out, pos

    def string_lists(self, pos: int) -> tuple[Headers, int]:
        """A map of string lists; one shared map for every block with the same text."""
        data = self.data
        if data.startswith(b" {}\n", pos):
            return {}, pos + 4
        if data[pos : pos + 1] != b"\n":
            raise _NotCanonical(pos)
        found = self.value_end.search(data, pos)
        if found is None:
            raise _NotCanonical(pos)
        end = found.start() + 1
        region = data[pos + 1 : end]
        lists = self.maps.get(region)
        if lists is None:
            lists = self.maps[region] = self.parse_string_lists(pos + 1, end)
        return lists, end

    def parse_string_lists(self, pos: int, end: int) -> Headers:
        data = self.data
        pad, column = self.value_pad, self.value
        item, indent = self.header_item, self.header_value
        out: Headers = {}
        while pos < end:
            if not data.startswith(pad, pos) or data[pos + column] == 32:
                raise _NotCanonical(pos)
            line_end = data.index(b"\n", pos)
            line = data[pos + column : line_end]
            values: list[str] = []
            if line.endswith(b": []"):
                name = line[:-4]
                pos = line_end + 1
            elif line.endswith(b":"):
                name = line[:-1]
                pos = line_end + 1
                while data.startswith(item, pos):
                    value, pos = self.text(pos + len(item) - 1, indent)
                    values.append(value)
            else:
                raise _NotCanonical(pos)
            out[self.text_of_key(name)] = values
        if pos != end:
            raise _NotCanonical(pos)
        return out

    def text_of_key(self, name: bytes) -> str:
        line = b" " + name
        value = self.strings.get(line)
        if value is None:
            value = self.strings[line] = _scalar_text(line)
        return value


_KeyReader = tuple[str, bytes, Callable[[_FastReader, int], tuple[object, int]], bool]


@dataclass(frozen=True, slots=True)
class _FastLayout:
    """The prefixes of one layout as bytes, and the readers of the request and response keys in
    the writer's order (each with whether an empty value means the every-key shape)."""

    item: bytes
    request: bytes
    response: bytes
    value: int
    value_pad: bytes
    list_item: bytes
    list_value: int
    header_item: bytes
    header_value: int
    value_end: re.Pattern[bytes]
    request_keys: tuple[_KeyReader, ...]
    response_keys: tuple[_KeyReader, ...]

    @staticmethod
    @lru_cache(maxsize=4)
    def of(indent: int) -> _FastLayout:
        layout = _Layout.of(Style(indent, True))
        keys = {name: prefix.encode() for name, prefix in layout.keys.items()}
        r = _FastReader
        text, number, maps, strings = r.text_field, r.int_field, r.string_lists, r.string_list
        request_readers = (
            ("proto", text),
            ("proto_major", number),
            ("proto_minor", number),
            ("content_length", number),
            ("transfer_encoding", strings),
            ("trailer", maps),
            ("host", text),
            ("remote_addr", text),
            ("request_uri", text),
            ("body", r.body),
            ("form", maps),
            ("headers", maps),
            ("url", text),
            ("method", text),
        )
        response_readers = (
            ("proto", text),
            ("proto_major", number),
            ("proto_minor", number),
            ("transfer_encoding", strings),
            ("trailer", maps),
            ("content_length", number),
            ("uncompressed", r.bool_field),
            ("body", r.body),
            ("headers", maps),
            ("status", text),
            ("code", number),
            ("duration", r.duration),
            ("chunks", r.chunks),
        )
        return _FastLayout(
            item=layout.item.encode() + b" ",
            request=layout.request.encode() + b"\n",
            response=layout.response.encode() + b"\n",
            value=layout.value,
            value_pad=b" " * layout.value,
            list_item=layout.list_item.encode(),
            list_value=len(layout.list_item) + 1,
            header_item=layout.header_item.encode() + b" ",
            header_value=layout.header_value,
            value_end=_block_end(layout.value),
            request_keys=tuple(
                (name, keys[name], read, name in _REQUEST_OPTIONAL)
                for name, read in request_readers
            ),
            response_keys=tuple(
                (name, keys[name], read, name in _RESPONSE_OPTIONAL and name != "chunks")
                for name, read in response_readers
            ),
        )


def _fast_loads(data: bytes) -> Cassette | None:
    """The cassette in `data` when the file is exactly what `dumps` writes (which go-vcr and this
    project write), read without composing YAML nodes; None for any other file. The result is the
    full reader's, before its chunks check: it is accepted only when `dumps` gives `data` back,
    and dumps(c) == data implies loads(data) == c. Equal header, form and trailer maps, and equal
    short strings, are shared objects."""
    if data == _FAST_EMPTY:
        return Cassette([], NEW_FILE_STYLE, {})
    if not data.startswith(_FAST_HEAD):
        return None
    pos = len(_FAST_HEAD)
    if data.startswith(b"- id: ", pos):
        indent = 2
    elif data.startswith(b"    - id: ", pos):
        indent = 4
    else:
        return None
    gc_was_enabled = gc.isenabled()
    gc.disable()  # many small acyclic objects: collections would only cost time
    try:
        reader = _FastReader(data, _FastLayout.of(indent))
        interactions = reader.interactions(pos)
        style = Style(indent, omit_empty=not reader.full_shape)
    except _GIVE_UP:
        return None
    finally:
        if gc_was_enabled:
            gc.enable()
    if not _writes_back(data, interactions, style):
        return None
    return Cassette(interactions, style, {})


def _writes_back(data: bytes, interactions: list[Interaction], style: Style) -> bool:
    """Whether dumps(Cassette(interactions, style)) == data, written and compared a batch of
    interactions at a time (never the whole file's text at once)."""
    layout = _Layout.of(style)
    pos = len(_FAST_HEAD)
    try:
        for first in range(0, len(interactions), _VERIFY_BATCH):
            out: list[str] = []
            batch = interactions[first : first + _VERIFY_BATCH]
            _write_interactions(out, layout, batch, first)
            written = "".join(out).encode("utf-8")
            if not data.startswith(written, pos):
                return False
            pos += len(written)
    except (ValueError, TypeError):  # a string dumps cannot write (a lone surrogate)
        return False
    return pos == len(data)


def loads(data: bytes | str, path: str | None = None) -> Cassette:
    """A cassette from its YAML. Raises CassetteError (naming `path`, the line and the problem)
    for anything go-vcr would not load, and for aliases. Values are kept as stored (no length is
    recomputed); the Style (indent, key shape) is taken from the file.

    The loaded objects may share parts: equal header, form and trailer maps (and their lists)
    can be one object used by many interactions, so treat loaded values as read-only and build
    new maps and lists to change them."""
    if isinstance(data, bytes | bytearray | memoryview):
        data = bytes(data)
    fast_data = data
    if isinstance(data, str):
        try:
            fast_data = data.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: the full reader names the problem
            fast_data = b""
    loaded = _fast_loads(fast_data) if fast_data else None
    if loaded is None:
        loaded = _full_loads(data, path)
    _check_chunks(loaded.interactions, path)
    return loaded


def _full_loads(data: bytes | str, path: str | None) -> Cassette:
    """loads() through PyYAML's nodes, for every file; before the chunks check."""
    if isinstance(data, bytes):
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as e:
            line = data[: e.start].count(b"\n") + 1
            message = f"not UTF-8 text (byte 0x{data[e.start]:02x})"
            raise CassetteError(message, path, line) from None
    root = _compose(data, path)
    if root is None:
        raise CassetteError("empty file, not a go-vcr cassette", path)
    _check_no_aliases(root, data, path)
    if type(root) is not MappingNode:
        raise CassetteError(
            f"not a go-vcr cassette: the document is {_kind(root)}, not a mapping",
            path,
            root.start_mark.line + 1,
        )
    version_node = interactions_node = None
    extra: dict[str, object] = {}
    conversion = _Conversion()
    try:
        for key_node, value_node in root.value:
            key = _read_text(key_node)
            if key == "version":
                version_node = value_node
            elif key == "interactions":
                interactions_node = value_node
            elif key in extra:
                raise _FieldError(key_node, f"duplicate key {key!r}")
            else:
                extra[key] = _read_extra(value_node)
        if version_node is None:
            raise _FieldError(root, "no version key: not a go-vcr cassette (version 2 expected)")
        if (
            type(version_node) is not ScalarNode
            or version_node.style
            or _go_int(version_node.value) != 2
        ):
            shown = version_node.value if type(version_node) is ScalarNode else _kind(version_node)
            if type(version_node) is ScalarNode and version_node.style:
                shown = f"{version_node.style}{shown}{version_node.style}"
            raise _FieldError(
                version_node, f"unsupported cassette version {shown} (version 2 expected)"
            )
        if interactions_node is None:
            raise _FieldError(root, "no interactions key")
        if type(interactions_node) is SequenceNode:
            items = interactions_node.value
        elif type(interactions_node) is ScalarNode and _is_null(interactions_node):
            items = []
        else:
            raise _FieldError(
                interactions_node, f"interactions must be a list, found {_kind(interactions_node)}"
            )
        interactions = []
        for index, item in enumerate(items):
            try:
                interactions.append(conversion.interaction(item, index))
            except _FieldError as e:
                raise e.under(f"interactions[{index}]") from None
    except _FieldError as e:
        line = e.node.start_mark.line + 1 if e.node is not None else None
        message = f"{e.path}: {e.message}" if e.path else e.message
        raise CassetteError(message, path, line) from None
    except RecursionError:
        raise CassetteError("nested too deeply", path) from None
    style = Style(_detect_indent(root, data), omit_empty=not conversion.full_shape)
    return Cassette(interactions, style, extra)


def load(path: str | os.PathLike[str]) -> Cassette:
    """The cassette in the file at `path`; CassetteError also when the file cannot be read."""
    name = os.fspath(path)
    try:
        with open(name, "rb") as f:
            data = f.read()
    except OSError as e:
        raise CassetteError(f"cannot read the cassette: {e.strerror or e}", name) from None
    return loads(data, name)
