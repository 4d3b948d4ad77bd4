"""Java: the proxy and a trust store for every JVM the command starts, through JAVA_TOOL_OPTIONS.

The JVM reads neither `HTTPS_PROXY` nor a PEM bundle. Every JVM (java, mvn, gradle and its
daemon's workers, JUnit forks) reads `JAVA_TOOL_OPTIONS`, so llm-vcr appends to it (after the
user's options, which are kept):

    -Dhttps.proxyHost=H -Dhttps.proxyPort=P -Dhttp.proxyHost=H -Dhttp.proxyPort=P
    -Dhttp.nonProxyHosts=localhost|127.*|[::1]      (nothing with --proxy-localhost)
    -Djavax.net.ssl.trustStore=STORE -Djavax.net.ssl.trustStorePassword=changeit
    -Djavax.net.ssl.trustStoreType=PKCS12

STORE is a PKCS12 file holding the JDK's own CAs (its `lib/security/cacerts`) plus the mitmproxy
CA, so the JVM's other HTTPS (Maven Central, Gradle's plugin portal) keeps trusting the real CAs.
It is made once with keytool and cached in `<confdir>/llm-vcr-java/`, named by a digest of both
inputs: a JDK update (new cacerts) or a new mitmproxy CA makes a new store.

The JDK is found from `$JAVA_HOME`, else from the `java` on PATH. `LLM_VCR_JAVA_CACERTS` names
another cacerts to start from (a company's store, or a test's). A property the user already
sets in `JAVA_TOOL_OPTIONS` is left to them (the JVM takes the last -D of a name, so llm-vcr
adds none for it) and one line says what to do by hand. With no JVM on PATH (and no JAVA_HOME)
nothing is added.

Proxy credentials (`serve --auth`) cannot be given to the JVM by system properties; the proxy
host and port are still set and one line says so.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.parse import urlsplit

from llmvcr.runtimes.cache import locked

CACERTS_VARIABLE = "LLM_VCR_JAVA_CACERTS"
STORE_PASSWORD = "changeit"  # the JDK's own default: a trust store holds no secret
CACERTS_PASSWORDS = ("changeit", "")
STORE_FOLDER = "llm-vcr-java"
CA_ALIAS = "llm-vcr-mitmproxy"
KEYTOOL_TIMEOUT = 120.0
NON_PROXY_HOSTS = "localhost|127.*|[::1]"
# keytool's JVM started for a short job: half the start-up time of the defaults.
KEYTOOL_JVM = ("-J-XX:TieredStopAtLevel=1", "-J-XX:+UseSerialGC")

Say = Callable[[str], None]


class JavaSetupError(Exception):
    """Why no trust store could be made (one line, says what to do by hand)."""


def java_home(environ: Mapping[str, str]) -> Path | None:
    """The JDK: `$JAVA_HOME` if it holds bin/java, else the real folder of the `java` on PATH."""
    home = environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return Path(home)
    java = shutil.which("java", path=environ.get("PATH"))
    if java is None:
        return None
    return Path(os.path.realpath(java)).parent.parent


def find_cacerts(environ: Mapping[str, str], home: Path | None) -> Path:
    """The CA store to start from: `$LLM_VCR_JAVA_CACERTS`, else the JDK's lib/security/cacerts
    (jre/lib/security/cacerts on Java 8). JavaSetupError when there is none."""
    given = environ.get(CACERTS_VARIABLE)
    if given:
        if not Path(given).is_file():
            raise JavaSetupError(f"{CACERTS_VARIABLE}={given} is not a file")
        return Path(given)
    tried: list[str] = []
    if home is not None:
        for relative in ("lib/security/cacerts", "jre/lib/security/cacerts"):
            candidate = home / relative
            if candidate.is_file():
                return candidate
            tried.append(str(candidate))
    raise JavaSetupError(
        "no JDK cacerts found (looked in " + (", ".join(tried) or "no JDK") + f"); set "
        f"{CACERTS_VARIABLE} or JAVA_HOME"
    )


def find_keytool(environ: Mapping[str, str], home: Path | None) -> Path:
    if home is not None and (home / "bin" / "keytool").is_file():
        return home / "bin" / "keytool"
    found = shutil.which("keytool", path=environ.get("PATH"))
    if found is None:
        raise JavaSetupError("keytool not found (it comes with the JDK); set JAVA_HOME")
    return Path(found)


def trust_store(confdir: Path, ca_cert: Path, cacerts: Path, keytool: Path) -> Path:
    """`<confdir>/llm-vcr-java/truststore-<digest>.p12`: `cacerts`'s CAs plus `ca_cert`, made
    once (under a lock, written beside and renamed); stores of older inputs are removed."""
    digest = hashlib.sha256(cacerts.read_bytes() + b"\0" + ca_cert.read_bytes()).hexdigest()[:16]
    folder = confdir / STORE_FOLDER
    store = folder / f"truststore-{digest}.p12"
    if store.is_file():
        return store
    with locked(folder / ".lock"):
        if store.is_file():
            return store
        temp = folder / f".truststore-{os.getpid()}.p12.tmp"
        temp.unlink(missing_ok=True)
        try:
            _copy_store(keytool, cacerts, temp)
            _keytool(keytool, "-importcert", "-alias", CA_ALIAS, "-file", str(ca_cert),
                     "-keystore", str(temp), "-storetype", "PKCS12",
                     "-storepass", STORE_PASSWORD, "-noprompt")
            os.chmod(temp, 0o644)
            os.replace(temp, store)
        finally:
            temp.unlink(missing_ok=True)
        for old in folder.glob("truststore-*.p12"):
            if old != store:
                old.unlink(missing_ok=True)  # JVMs read their store when they start
    return store


def _copy_store(keytool: Path, cacerts: Path, destination: Path) -> None:
    """Every entry of `cacerts` into a new PKCS12 `destination` (JKS or PKCS12 source; its
    password is the JDK's default, or none)."""
    last = ""
    for password in CACERTS_PASSWORDS:
        try:
            _keytool(keytool, "-importkeystore", "-srckeystore", str(cacerts),
                     "-srcstorepass", password, "-destkeystore", str(destination),
                     "-deststoretype", "PKCS12", "-deststorepass", STORE_PASSWORD, "-noprompt")
            return
        except JavaSetupError as e:
            last = str(e)
            destination.unlink(missing_ok=True)
    raise JavaSetupError(f"cannot read {cacerts}: {last}")


def _keytool(keytool: Path, *args: str) -> None:
    try:
        result = subprocess.run([str(keytool), *KEYTOOL_JVM, *args], capture_output=True, text=True,
                                timeout=KEYTOOL_TIMEOUT, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise JavaSetupError(f"keytool did not finish within {KEYTOOL_TIMEOUT:g} s") from None
    except OSError as e:
        raise JavaSetupError(f"cannot run {keytool}: {e.strerror}") from None
    if result.returncode != 0:
        said = [line.strip() for line in (result.stdout + result.stderr).splitlines()
                if line.strip() and not line.startswith("Picked up ")]
        raise JavaSetupError(f"keytool failed: {said[-1] if said else result.returncode}")


def user_properties(options: str) -> set[str]:
    """The `-Dname` system properties that JAVA_TOOL_OPTIONS `options` already sets."""
    try:
        words = shlex.split(options)
    except ValueError:
        words = options.split()
    return {word[2:].partition("=")[0] for word in words if word.startswith("-D")}


def _word(name: str, value: str) -> str:
    """`-Dname=value`, quoted for JAVA_TOOL_OPTIONS when the value has a space or quote."""
    text = f"-D{name}={value}"
    if not re.search(r"[\s\"']", text):
        return text
    return f"'{text}'" if '"' in text else f'"{text}"'  # the JVM has quotes, no escapes


def environment(
    proxy_url: str, confdir: Path, ca_cert: Path, base: Mapping[str, str],
    proxy_localhost: bool, say: Say,
) -> dict[str, str | None]:
    """`{"JAVA_TOOL_OPTIONS": ...}` for a client started from `base`, or {} without a JVM."""
    home = java_home(base)
    if home is None:
        return {}
    parts = urlsplit(proxy_url)
    host, port = parts.hostname or "127.0.0.1", str(parts.port or 80)
    if ":" in host:
        host = f"[{host}]"
    properties = {
        "https.proxyHost": host, "https.proxyPort": port,
        "http.proxyHost": host, "http.proxyPort": port,
        "http.nonProxyHosts": "" if proxy_localhost else NON_PROXY_HOSTS,
    }
    if parts.username:
        say("Java cannot send proxy credentials from system properties: give the JVM an "
            "Authenticator, or point it at a loopback proxy without --auth")
    try:
        store = trust_store(confdir, ca_cert, find_cacerts(base, home), find_keytool(base, home))
        properties.update({
            "javax.net.ssl.trustStore": str(store),
            "javax.net.ssl.trustStorePassword": STORE_PASSWORD,
            "javax.net.ssl.trustStoreType": "PKCS12",
        })
    except (JavaSetupError, OSError) as e:
        say(f"Java: {e}; Java clients will not trust the proxy: import {ca_cert} into a copy of "
            "the JDK's cacerts with keytool -importcert and pass -Djavax.net.ssl.trustStore=...")
    existing = base.get("JAVA_TOOL_OPTIONS", "")
    theirs = user_properties(existing) & properties.keys()
    if theirs:
        names = ", ".join(sorted(theirs))
        say(f"JAVA_TOOL_OPTIONS already sets {names}: kept as the user's; llm-vcr set the rest "
            f"(by hand: " + " ".join(_word(n, properties[n]) for n in sorted(theirs)) + ")")
    words = [_word(name, value) for name, value in properties.items() if name not in theirs]
    combined = " ".join(part for part in (existing.strip(), *words) if part)
    return {"JAVA_TOOL_OPTIONS": combined}
