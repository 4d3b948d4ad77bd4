"""Go's syntax for the values a cassette holds as text: durations (`time.Duration`), integers
(`strconv` with yaml.v3's prefixes) and header names (`textproto`).

Each function does what the named Go function does, including where Go fails, so a file this
project reads or writes means the same to go-vcr.
"""

from __future__ import annotations

import re
from functools import lru_cache

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


def round_to_ms(ns: int) -> int:
    """Go's `Duration.Round(time.Millisecond)`: halves away from zero."""
    if ns < 0:
        return -round_to_ms(-ns)
    return (ns + 500_000) // 1_000_000 * 1_000_000


# ---------------------------------------------------------------------------------------------
# Header names (textproto.CanonicalMIMEHeaderKey)

_HEADER_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


@lru_cache(maxsize=4096)
def canonical_header_name(name: str) -> str:
    """Go's `textproto.CanonicalMIMEHeaderKey`: `content-type` -> `Content-Type`. A name with a
    character that is not an HTTP token character comes back unchanged, as in Go."""
    if not _HEADER_TOKEN.fullmatch(name):
        return name
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))



# ---------------------------------------------------------------------------------------------
# Integers (strconv.ParseInt / ParseUint, and yaml.v3's reading of a plain integer)

_DIGITS_OF_BASE = {
    2: re.compile(r"[01]+"),
    8: re.compile(r"[0-7]+"),
    10: re.compile(r"[0-9]+"),
    16: re.compile(r"[0-9a-fA-F]+"),
}



def go_parse_uint(s: str, base: int) -> int | None:
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


def go_parse_int(s: str, base: int) -> int | None:
    """strconv.ParseInt(s, base, 64)."""
    neg = s[:1] == "-"
    value = go_parse_uint(s[1:] if s[:1] in ("-", "+") else s, base)
    if value is None or value > (1 << 63 if neg else _INT64_MAX):
        return None
    return -value if neg else value


def go_int(text: str) -> int | None:
    """yaml.v3's reading of a plain integer: Go prefixes, `_` separators, int64 or uint64."""
    plain = text.replace("_", "")
    if plain[:1] in ("+", "-"):
        return go_parse_int(plain, 0)
    return go_parse_uint(plain, 0)
