"""A throwaway certificate authority and a server certificate for the fake upstreams.

The fake LLM upstreams (`support.fake_upstream`) serve TLS with a certificate for `127.0.0.1`,
`::1` and `localhost` signed by a CA made here. mitmdump is told to trust that CA for its upstream
connections with `--set ssl_verify_upstream_trusted_ca=<UpstreamTLS.ca_cert>` (done by
`support.proxy.MitmProxy`), so upstream certificate checks stay on in the tests.

    tls = make_upstream_tls(tmp_folder)      # conftest: the session fixture `upstream_tls`
    tls.ca_cert, tls.server_cert, tls.server_key   # PEM files
    tls.client_context()                     # ssl.SSLContext for talking to an upstream directly

mitmproxy rewrites the upstream address with `map_remote` to `127.0.0.1:<port>`, so the address
mitmproxy checks is the IP: the certificate carries it as an IP SAN (SNI cannot carry an IP).
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SERVER_NAMES: tuple[str, ...] = ("127.0.0.1", "::1", "localhost")


@dataclass(frozen=True, slots=True)
class UpstreamTLS:
    """PEM files of the throwaway CA and of the server certificate it signed."""

    ca_cert: Path
    server_cert: Path
    server_key: Path

    def client_context(self) -> ssl.SSLContext:
        """A fresh client context trusting only the throwaway CA (fresh because httpx/httpcore
        set ALPN on the context they are given, so one context must not serve two clients)."""
        return ssl.create_default_context(cafile=str(self.ca_cert))


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "llm-vcr tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _subject_alt_names(names: Sequence[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def make_upstream_tls(folder: Path, names: Sequence[str] = SERVER_NAMES) -> UpstreamTLS:
    """Create a CA and a server certificate for `names` (IPs become IP SANs) in `folder`.

    Files: `ca.pem`, `server.pem` (leaf then CA, a full chain), `server-key.pem`. Valid from a day
    ago for 30 days. The extensions are the ones strict verifiers (OpenSSL 3+, X509_STRICT) want.
    """
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    not_before = now - datetime.timedelta(days=1)
    not_after = now + datetime.timedelta(days=30)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("llm-vcr test CA")
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    server_key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(_name(names[0]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(_subject_alt_names(names), critical=False)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )

    tls = UpstreamTLS(
        ca_cert=folder / "ca.pem",
        server_cert=folder / "server.pem",
        server_key=folder / "server-key.pem",
    )
    ca_pem = ca.public_bytes(serialization.Encoding.PEM)
    tls.ca_cert.write_bytes(ca_pem)
    tls.server_cert.write_bytes(server.public_bytes(serialization.Encoding.PEM) + ca_pem)
    _write_key(tls.server_key, server_key)
    return tls
