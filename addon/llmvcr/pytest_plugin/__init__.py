"""llm-vcr's pytest plugin: a cassette per test (entry point `pytest11: llmvcr`; `-p no:llmvcr`
turns it off).

A test opts in with the `vcr` marker (on the test, its class or its module: `pytestmark`) or by
asking for the `vcr_session` fixture. Its requests then go to its own cassette,

    <vcr-dir>/<test file path relative to rootdir, without .py>/<Class.>test_name[id].yaml

(`naming`), or to the cassettes the marker names: `@pytest.mark.vcr("shared/login", "chat")` (names
relative to the cassette folder; the first records). The marker may also set `mode=`, `strict=`,
`latency=` and `reuse=` for that test.

Options (command line, or the ini file's `vcr_*` keys: `pytest.ini`, `[tool.pytest.ini_options]`):
`--vcr-mode` (default record_once), `--vcr-server HOST:PORT` (a running `llm-vcr serve`; also
`$LLM_VCR_PROXY`), `--vcr-dir` (default tests/cassettes, relative to the rootdir), `--vcr-latency`,
`--vcr-set NAME=VALUE` (mitmproxy and addon options for the proxy the plugin starts), `--vcr-strict`
(a recorded interaction the test did not use fails it) and `--vcr-block` (an unmarked test's LLM
requests are refused and fail it).

Nothing happens unless a collected test opts in (or `--vcr-block` is given): no proxy, no variable
changed. Then, after collection, one proxy is started for the pytest process (each xdist worker
starts its own, or all share `--vcr-server`), and the process's proxy and CA variables point at it
until the session ends (`runtime` says how requests find each test's session). Clients must be
made after collection: in a test or a fixture, not at import time.

A request that found no recorded answer fails its test in the call phase with the proxy's
explanation, even if the client swallowed the 404; so does, with `--vcr-strict`, an interaction
the test left unused. A bad marker, an unwritable cassette folder, a proxy that cannot start or
a serve that does not answer make the tests that need them error with one line.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

# Only the small pure modules at import time: every pytest run of a project that installed
# llm-vcr imports this module, so the rest loads only once a test opts in.
from llmvcr.modes import Mode
from llmvcr.pytest_plugin.settings import Options, PluginError

if TYPE_CHECKING:
    from llmvcr.pytest_plugin.runtime import Connection, TestSession

FIXTURE = "vcr_session"
MARKER = "vcr"
DEFAULT_DIR = "tests/cassettes"
DEFAULT_MODE = Mode.RECORD_ONCE.value
RECORDING_MODES = frozenset({"record_once", "record", "new_episodes"})
# Plugins that own @pytest.mark.vcr too (their pytest11 entry point names).
CONFLICTS = {"recording": "pytest-recording", "vcr": "pytest-vcr"}


@dataclass
class State:
    """The plugin's state for one pytest run (`config.stash`)."""

    options: Options
    worker: str
    connection: Connection | None = None
    error: str | None = None  # why the proxy is not available (each test that needs it errors)
    totals: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("tests", "replayed", "recorded", "missed"), 0))


STATE = pytest.StashKey[State]()
SESSION = pytest.StashKey["TestSession"]()
FAILURE = pytest.StashKey[str]()


# -- options ------------------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("llm-vcr", "llm-vcr: record and replay LLM calls, a cassette per test")
    modes = [m.value for m in Mode]
    group.addoption("--vcr-mode", choices=modes, default=None,
                    help=f"mode of the tests' sessions (default {DEFAULT_MODE}; ini vcr_mode)")
    group.addoption("--vcr-server", metavar="HOST:PORT", default=None,
                    help="use a running llm-vcr serve (default $LLM_VCR_PROXY; else the plugin "
                         "starts a proxy; ini vcr_server)")
    group.addoption("--vcr-dir", metavar="DIR", default=None,
                    help=f"cassette folder, relative to the rootdir (default {DEFAULT_DIR}; "
                         "ini vcr_dir)")
    group.addoption("--vcr-latency", metavar="L", default=None,
                    help="replay pace: none, recorded, or a factor like 0.5 (ini vcr_latency)")
    group.addoption("--vcr-set", metavar="NAME=VALUE", action="append", default=None,
                    help="a mitmproxy or addon option for the proxy the plugin starts "
                         "(repeat; ini vcr_set, one per line)")
    group.addoption("--vcr-strict", action="store_true", default=None,
                    help="fail a test that left a recorded interaction unused (ini vcr_strict)")
    group.addoption("--vcr-block", action="store_true", default=None,
                    help="refuse the LLM requests of tests without the vcr marker, and fail them "
                         "(ini vcr_block)")
    parser.addini("vcr_mode", f"llm-vcr: the tests' mode (default {DEFAULT_MODE})")
    parser.addini("vcr_server", "llm-vcr: a running serve, HOST:PORT")
    parser.addini("vcr_dir", f"llm-vcr: cassette folder (default {DEFAULT_DIR})")
    parser.addini("vcr_latency", "llm-vcr: replay pace")
    parser.addini("vcr_set", "llm-vcr: proxy options, NAME=VALUE per line", type="linelist")
    parser.addini("vcr_strict", "llm-vcr: fail tests that leave interactions unused", type="bool",
                  default=False)
    parser.addini("vcr_block", "llm-vcr: refuse unmarked tests' LLM requests", type="bool",
                  default=False)


def read_options(config: pytest.Config) -> Options:
    """The options, the command line winning over the ini file; UsageError for bad values."""
    def value(name: str) -> Any:
        given = config.getoption(f"--vcr-{name}")
        return given if given is not None else (config.getini(f"vcr_{name}") or None)

    mode = value("mode") or DEFAULT_MODE
    modes = [m.value for m in Mode]
    if mode not in modes:
        raise pytest.UsageError(f"llm-vcr: vcr_mode {mode!r} is not a mode; use one of {modes}")
    latency = value("latency")
    if latency is not None:
        from llmvcr.replay import parse_latency

        try:
            parse_latency(latency)
        except ValueError as e:
            raise pytest.UsageError(f"llm-vcr: --vcr-latency: {e}") from None
    given = list(config.getoption("--vcr-set") or ())
    overridden = {setting.partition("=")[0] for setting in given}
    settings = [s for s in config.getini("vcr_set") if s.partition("=")[0] not in overridden]
    settings += given
    for setting in settings:
        name, sep, _ = setting.partition("=")
        if not sep or not name.strip():
            raise pytest.UsageError(f"llm-vcr: --vcr-set expects NAME=VALUE, got {setting!r}")
    folder = Path(os.path.expanduser(value("dir") or DEFAULT_DIR))
    return Options(
        mode=mode,
        server=value("server"),
        vcr_dir=(folder if folder.is_absolute() else config.rootpath / folder).absolute(),
        latency=latency,
        settings=tuple(settings),
        strict=bool(value("strict")),
        block=bool(value("block")),
    )


# -- start-up -----------------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(*cassettes, mode=None, strict=None, latency=None, reuse=None): llm-vcr: the "
        "test's LLM requests go to its own cassette (or the named ones; the first records)",
    )
    for name, package in CONFLICTS.items():
        if config.pluginmanager.hasplugin(name):
            raise pytest.UsageError(
                f"llm-vcr: {package} is active too and owns @pytest.mark.vcr; disable one: "
                f"-p no:{name} or -p no:llmvcr"
            )
    worker = getattr(config, "workerinput", {}).get("workerid", "main")
    config.stash[STATE] = State(read_options(config), worker)


def opted_in(item: pytest.Item) -> bool:
    return item.get_closest_marker(MARKER) is not None or FIXTURE in getattr(
        item, "fixturenames", ())


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the proxy when a collected test opts in (or --vcr-block asks to police the rest)."""
    config = session.config
    state = config.stash.get(STATE, None)
    if state is None or config.option.collectonly or state.connection or state.error:
        return
    if not session.items or not (
        state.options.block or any(opted_in(item) for item in session.items)
    ):
        return
    from llmvcr.pytest_plugin.runtime import Connection
    from llmvcr.session_client import ControlError

    try:
        state.connection = Connection.start(state.options, state.worker)
    except (PluginError, ControlError) as e:
        state.error = f"llm-vcr: {e}"


def pytest_sessionfinish(session: pytest.Session) -> None:
    state = session.config.stash.get(STATE, None)
    if state is not None and state.connection is not None:
        state.connection.stop()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is None or (state.connection is None and state.error is None):
        return
    if state.error is not None:
        terminalreporter.write_line(state.error)
        return
    t = state.totals
    where = state.options.vcr_dir if state.connection.folder else state.connection.proxy.shown
    terminalreporter.write_line(
        f"llm-vcr: {t['tests']} test session(s): replayed {t['replayed']}, recorded "
        f"{t['recorded']}, missed {t['missed']} ({where})"
    )
    for note in state.connection.notes:
        terminalreporter.write_line(f"llm-vcr: {note}")


# -- each test ----------------------------------------------------------------------------------


def _cassettes(item: pytest.Item, marker: pytest.Mark | None) -> list[str]:
    """The test's cassette names: the marker's, else the one named after the test."""
    from llmvcr.pytest_plugin import naming
    from llmvcr.store import CassetteNameError, validate_name

    if marker is not None and marker.args:
        names = []
        for given in marker.args:
            try:
                names.append(validate_name(given))
            except (CassetteNameError, TypeError) as e:
                raise PluginError(
                    f"@pytest.mark.vcr({given!r}): not a cassette name: {e}; give a relative "
                    "path like 'chat/greeting'"
                ) from None
        return names
    file_part, *rest = item.nodeid.split("::")
    try:
        relative = item.path.relative_to(item.config.rootpath).as_posix()
    except ValueError:
        relative = file_part
    return [naming.cassette_name_for(relative, rest or [item.name])]


def _begin(item: pytest.Item, state: State) -> None:
    from llmvcr.pytest_plugin.runtime import unwritable

    if state.error is not None:
        raise PluginError(state.error.removeprefix("llm-vcr: "))
    connection = state.connection
    if connection is None:
        raise PluginError("no proxy: the plugin started none (collection did not see this test)")
    marker = item.get_closest_marker(MARKER)
    kwargs = dict(marker.kwargs) if marker is not None else {}
    unknown = set(kwargs) - {"mode", "strict", "latency", "reuse"}
    if unknown:
        raise PluginError(f"@pytest.mark.vcr: unknown argument(s) {', '.join(sorted(unknown))}; "
                          "it takes cassette names, mode=, strict=, latency=, reuse=")
    options = state.options
    mode = str(kwargs.get("mode") or options.mode)
    if mode not in [m.value for m in Mode]:
        raise PluginError(f"@pytest.mark.vcr(mode={mode!r}): not a mode")
    cassettes = _cassettes(item, marker)
    if connection.folder is not None and mode in RECORDING_MODES:
        why = unwritable(connection.folder / f"{cassettes[0]}.yaml")
        if why:
            raise PluginError(
                f"cannot record cassette {connection.folder / cassettes[0]}.yaml: {why}; make "
                "it writable, give --vcr-dir a writable folder, or replay only (--vcr-mode replay)"
            )
    strict = kwargs.get("strict")
    item.stash[SESSION] = connection.begin(
        cassettes, mode, options.strict if strict is None else bool(strict),
        kwargs.get("latency", options.latency), kwargs.get("reuse"),
    )


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    """Open the test's session before its fixtures are set up (they may call the LLM too).

    A session that cannot be opened errors the test once pytest's own setup has run (failing
    before it would leave pytest's teardown without what its setup keeps)."""
    state = item.config.stash.get(STATE, None)
    failure = None
    if state is not None and opted_in(item):
        from llmvcr.session_client import ControlError

        try:
            _begin(item, state)
        except (PluginError, ControlError) as e:
            failure = f"llm-vcr: {e}"
    elif state is not None and state.options.block and state.error is not None:
        failure = f"{state.error} (--vcr-block cannot refuse this test's requests)"
    if failure is not None:
        item.stash[FAILURE] = failure  # for the vcr_session fixture, set up within the yield
    result = yield
    if failure is not None:
        pytest.fail(failure, pytrace=False)
    return result


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """After the test function: close its session and fail the test (in this call phase) on a
    miss, or with --vcr-strict on an unused interaction; police unmarked tests under --vcr-block."""
    state = item.config.stash.get(STATE, None)
    session = item.stash.get(SESSION, None)
    if state is None or state.connection is None:
        return (yield)
    try:
        result = yield
    except BaseException as error:
        failure = _after_call(item, state, session)
        if failure and not isinstance(error, (pytest.skip.Exception, KeyboardInterrupt)):
            # An SDK error carrying the proxy's 404 text already says what missed.
            if session is not None and "no recorded answer in cassette" in str(error):
                failure = failure.splitlines()[-1].strip()
            error.add_note(failure)
        raise
    failure = _after_call(item, state, session)
    if failure:
        pytest.fail(failure, pytrace=False)
    return result


def _after_call(item: pytest.Item, state: State, session: TestSession | None) -> str | None:
    """The failure text for the test's call phase, if any (closes the test's session)."""
    from llmvcr.pytest_plugin.runtime import problems
    from llmvcr.session_client import ControlError

    connection = state.connection
    assert connection is not None
    try:
        if session is None:
            if not state.options.block:
                return None
            refused = connection.blocked_requests()
            if not refused:
                return None
            return ("llm-vcr: --vcr-block: this test is not marked, so its LLM requests were "
                    "refused:\n" + "\n".join(f"  {line}" for line in refused) +
                    "\n  mark it @pytest.mark.vcr to record and replay them")
        final = connection.finish(session, state.options.block)
    except ControlError as e:
        return f"llm-vcr: {e}"
    _count(state, final)
    misses, unused = problems(final, session.strict)
    lines: list[str] = []
    if misses:
        lines.append(f"llm-vcr: {len(misses)} request(s) found no recorded answer "
                     f"(mode {session.mode}):")
        lines += [f"  {line}" for line in misses]
    if unused:
        lines.append(f"llm-vcr: --vcr-strict: {len(unused)} recorded interaction(s) were not "
                     "used:")
        lines += [f"  {line}" for line in unused]
    if lines:
        lines.append(f"  re-record this test: pytest --vcr-mode record '{item.nodeid}'")
    return "\n".join(lines) or None


def _count(state: State, final: dict[str, object]) -> None:
    totals = final.get("totals")
    state.totals["tests"] += 1
    if isinstance(totals, dict):
        for key in ("replayed", "recorded", "missed"):
            state.totals[key] += int(totals.get(key, 0))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    """A session whose call phase never ran (its setup failed or skipped) is closed here."""
    state = item.config.stash.get(STATE, None)
    session = item.stash.get(SESSION, None)
    if state is not None and state.connection is not None and session is not None and (
        session.final is None
    ):
        from llmvcr.session_client import ControlError

        with contextlib.suppress(ControlError):
            state.connection.finish(session, state.options.block)
    return (yield)


@pytest.fixture
def vcr_session(request: pytest.FixtureRequest) -> TestSession:
    """The test's llm-vcr session (asking for it opts the test in): `.report()` is its live
    report (replayed, recorded, missed, unused per cassette, and totals), `.cassettes` its
    cassette names, `.paths` their files (None on a `--vcr-server`), `.mode`, `.id`."""
    session = request.node.stash.get(SESSION, None)
    if session is None:
        pytest.fail(request.node.stash.get(FAILURE, "llm-vcr: this test has no session"),
                    pytrace=False)
    return session
