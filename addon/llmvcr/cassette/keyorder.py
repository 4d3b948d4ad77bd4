"""go-yaml's order of map keys (sorter.go's `keyList.Less`), for header, form and trailer names
and unknown keys: go-vcr writes Go maps, and go-yaml sorts their keys before writing them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cmp_to_key

from .model import SURROGATE


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
    a, b = SURROGATE.sub("\ufffd", a), SURROGATE.sub("\ufffd", b)
    if _go_key_less(a, b):
        return -1
    return 1 if _go_key_less(b, a) else 0


_LETTERS_AND_DASHES = re.compile(r"[A-Za-z-]*")
_SORTED_KEYS: dict[tuple[str, ...], list[str]] = {}


def sorted_keys(keys: Iterable[str]) -> list[str]:
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
