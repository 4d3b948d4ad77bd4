"""llm-vcr's mitmproxy options: their declarations, and the checks mitmproxy does not make.

mitmproxy applies `--set vcr_mode=...` given before the script loaded without looking at the
option's `choices`, and keeps a `--set` of an option nobody declared (`vcr_latncy`) in
`OptManager.deferred` for an addon that might declare it later, so a typo is silently ignored.
`parse_mode` and `refuse_unknown` turn both into an OptionsError naming the valid values.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mitmproxy import exceptions

from . import jsonpath
from .hosts import DEFAULT_HOSTS, HostPatterns
from .modes import Mode
from .redact import DEFAULT_KEEP_HEADERS
from .replay import parse_latency
from .sessions import Settings
from .store import CassetteNameError, validate_name

PREFIX = "vcr_"


def declare(loader: Any) -> None:
    """Add every llm-vcr option (the addon's `load` hook)."""
    loader.add_option(
        "vcr_mode", str, Mode.RECORD_ONCE.value,
        "Cassette mode: record_once, replay, record, new_episodes, passthrough or verify.",
        choices=[m.value for m in Mode],
    )
    loader.add_option("vcr_dir", str, "cassettes", "Folder of the cassette store.")
    loader.add_option(
        "vcr_cassette", str, "default",
        "Cassette for requests that pick none (X-VCR-Cassette header or proxy user name).",
    )
    loader.add_option(
        "vcr_hosts", Sequence[str], list(DEFAULT_HOSTS),
        "Glob patterns of the hosts to record and replay ('*' = every host).",
    )
    loader.add_option(
        "vcr_latency", str, "none",
        "Replay pace: none, recorded, or a factor of the recorded times like 0.5.",
    )
    loader.add_option(
        "vcr_keep_headers", Sequence[str], list(DEFAULT_KEEP_HEADERS),
        "Headers saved in cassettes; every other header is dropped.",
    )
    loader.add_option(
        "vcr_ignore_json", Sequence[str], [],
        "JSON body paths left out of matching (dot paths, * for any key or index).",
    )
    loader.add_option(
        "vcr_redact_json", Sequence[str], [],
        "JSON body paths whose values are saved as REDACTED (requests and responses).",
    )
    loader.add_option(
        "vcr_match_headers", Sequence[str], [], "Header names that must also match."
    )
    loader.add_option(
        "vcr_reuse", bool, False, "Let a recorded interaction answer more than once."
    )
    loader.add_option(
        "vcr_summary", str, "",
        "Write a JSON summary per cassette and session here when mitmproxy stops.",
    )
    loader.add_option(
        "vcr_session_idle", float, 3600.0,
        "Seconds without a request after which an open session is closed and its report logged.",
    )


def parse_mode(value: str) -> Mode:
    """The `vcr_mode` value as a Mode; OptionsError naming the valid modes."""
    try:
        return Mode(value)
    except ValueError:
        raise exceptions.OptionsError(
            f"vcr_mode: {value!r} is not a mode; valid modes: {', '.join(m.value for m in Mode)}"
        ) from None


def refuse_unknown(opts: Any) -> None:
    """OptionsError when a `--set vcr_...` names no llm-vcr option (mitmproxy keeps it in
    `deferred` instead of refusing it), listing the valid ones."""
    unknown = sorted(name for name in getattr(opts, "deferred", {}) if name.startswith(PREFIX))
    if unknown:
        known = opts.keys()  # (an OptManager is not iterable)
        valid = sorted(name for name in known if name.startswith(PREFIX))
        raise exceptions.OptionsError(
            f"unknown option(s) {', '.join(unknown)}; llm-vcr's options: {', '.join(valid)}"
        )


def default_settings(opts: Any) -> Settings:
    """The proxy's default session: `vcr_mode`, `vcr_reuse`, `vcr_latency`."""
    try:
        latency = parse_latency(opts.vcr_latency)
    except ValueError as e:
        raise exceptions.OptionsError(str(e)) from None
    return Settings(parse_mode(opts.vcr_mode), reuse=opts.vcr_reuse, latency=latency)


def session_idle(opts: Any) -> float:
    if not opts.vcr_session_idle > 0:
        raise exceptions.OptionsError("vcr_session_idle: a number of seconds above 0")
    return float(opts.vcr_session_idle)


def check_names(opts: Any, updated: set[str]) -> None:
    """OptionsError for a bad `vcr_cassette` name or a bad JSON path."""
    if "vcr_cassette" in updated:
        try:
            validate_name(opts.vcr_cassette)
        except CassetteNameError as e:
            raise exceptions.OptionsError(f"vcr_cassette: {e}") from None
    for name in ("vcr_ignore_json", "vcr_redact_json"):
        for path in getattr(opts, name):
            try:
                jsonpath.parse(path)
            except ValueError as e:
                raise exceptions.OptionsError(f"{name}: {path!r}: {e}") from None


def host_patterns(opts: Any) -> HostPatterns:
    try:
        return HostPatterns(opts.vcr_hosts)
    except ValueError as e:
        raise exceptions.OptionsError(f"vcr_hosts: {e}") from None


def store_root(opts: Any) -> Path:
    root = Path(opts.vcr_dir).expanduser().resolve()
    if root.exists() and not root.is_dir():
        raise exceptions.OptionsError(f"vcr_dir: {root} is not a folder")
    return root
