"""The inside of `llm-vcr run --isolate`: a network namespace whose only way out is the proxy.

Run as a script by `llmvcr.isolate` (stdlib only, `python -I`, so the command's PYTHONPATH never
shapes it):

    python -I isolate_namespace.py --socket S --port P --report R -- CMD [ARGS...]
    python -I isolate_namespace.py --probe          (exit 0 when a namespace can be made)

In order, before any thread exists (unshare refuses a threaded process a user namespace):
1. A new network and mount namespace (as root), or user + network + mount namespaces (as
   another user: the command keeps its own uid, mapped to itself, and gets no capabilities).
2. Mounts made private, then `/etc/resolv.conf` replaced (bind mount, this namespace only) by one
   naming 127.0.0.1 and `/etc/nsswitch.conf` by one whose `hosts:` line is `files dns`, so every
   name lookup reaches the responder below (not systemd-resolved over a Unix socket).
3. `lo` up, and every address routed to it (`local 0.0.0.0/0` and `local ::/0`, over rtnetlink):
   a connection to any address is refused at once by this namespace, never sent anywhere.
Then three threads:
- the relay: 127.0.0.1:P inside, each connection carried over the Unix socket S to the proxy
  (`llmvcr.isolate` listens on S in the host's namespace and connects to the proxy);
- a DNS responder on 127.0.0.1:53 (UDP) that records each name asked and answers NXDOMAIN;
- a packet watcher (AF_PACKET on lo) that records each TCP SYN and UDP datagram that is not for
  the relay or the responder: the address and port a client tried without a name.
The command runs as a child, signals forwarded; when it ends the watcher's queue is drained (its
packets were queued before the command saw its connection refused) and the report written as
JSON `{"names": [...], "addresses": ["host:port", ...]}`. Exit code: the command's (128+N when
killed by signal N).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import ctypes.util
import fcntl
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

PROBE_FAILED_EXIT = 70
CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
ETH_P_ALL, PACKET_HOST = 0x0003, 0
RTM_NEWROUTE = 24
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
RT_TABLE_LOCAL, RTPROT_BOOT, RT_SCOPE_HOST, RTN_LOCAL, RTA_OIF = 255, 3, 254, 2, 4


class SetupError(Exception):
    """A namespace step the kernel refused (message names the step)."""


# -- 1-3: the namespace ----------------------------------------------------------------------------


def enter_namespace(folder: Path) -> None:
    """Steps 1-3 for this process (the replacement files are written in `folder`). SetupError
    when the system does not allow them."""
    uid, gid = os.getuid(), os.getgid()
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    flags = CLONE_NEWNET | CLONE_NEWNS | (0 if os.geteuid() == 0 else CLONE_NEWUSER)
    if libc.unshare(flags) != 0:  # ctypes, not os.unshare: that one is Python 3.12+ only
        raise SetupError(f"unshare: {os.strerror(ctypes.get_errno())}")
    if flags & CLONE_NEWUSER:
        try:
            Path("/proc/self/setgroups").write_text("deny")
            Path("/proc/self/uid_map").write_text(f"{uid} {uid} 1")
            Path("/proc/self/gid_map").write_text(f"{gid} {gid} 1")
        except OSError as e:
            raise SetupError(f"mapping the user: {e.strerror}") from None
    libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_void_p]
    if libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        raise SetupError(f"making mounts private: {os.strerror(ctypes.get_errno())}")
    _replace_file(libc, folder / "resolv.conf", "/etc/resolv.conf",
                  "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
    nsswitch = Path("/etc/nsswitch.conf")
    if nsswitch.is_file():
        lines = [("hosts: files dns" if line.split(":")[0].strip() == "hosts" else line)
                 for line in nsswitch.read_text(errors="replace").splitlines()]
        _replace_file(libc, folder / "nsswitch.conf", str(nsswitch), "\n".join(lines) + "\n")
    _loopback_up()
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            _route_everything_to_loopback(family)
        except OSError as e:
            if family == socket.AF_INET:  # IPv6 may be disabled: then nothing leaves by it
                raise SetupError(f"routing to lo: {e.strerror}") from None


def _replace_file(libc: ctypes.CDLL, source: Path, target: str, text: str) -> None:
    source.write_text(text)
    source.chmod(0o644)
    if not Path(target).exists():
        return  # nothing to cover: the resolver's default is 127.0.0.1 too
    if libc.mount(str(source).encode(), os.path.realpath(target).encode(), None, MS_BIND,
                  None) != 0:
        raise SetupError(f"covering {target}: {os.strerror(ctypes.get_errno())}")


def _loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as control:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(control, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(control, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))


def _route_everything_to_loopback(family: int) -> None:
    """`ip route add local default dev lo` for `family`, over rtnetlink."""
    attribute = struct.pack("HHI", 8, RTA_OIF, socket.if_nametoindex("lo"))
    body = struct.pack("BBBBBBBBI", family, 0, 0, 0, RT_TABLE_LOCAL, RTPROT_BOOT, RT_SCOPE_HOST,
                       RTN_LOCAL, 0) + attribute
    flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
    message = struct.pack("IHHII", 16 + len(body), RTM_NEWROUTE, flags, 1, 0) + body
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as link:
        link.bind((0, 0))
        link.send(message)
        answer = link.recv(4096)
    error = struct.unpack_from("i", answer, 16)[0]
    if error:
        raise OSError(-error, os.strerror(-error))


# -- the relay, the responder, the watcher ---------------------------------------------------------


class Report:
    """What the command tried, in first-seen order, shared by the threads."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.addresses: list[str] = []
        self.lock = threading.Lock()

    def add(self, kind: list[str], item: str) -> None:
        with self.lock:
            if item not in kind:
                kind.append(item)


def splice(first: socket.socket, second: socket.socket) -> None:
    """Carry bytes both ways between two connected sockets, one daemon thread a direction, until
    each side ends; each direction's end is passed on as a half close (also `llmvcr.isolate`'s
    relay from its Unix socket to the proxy)."""
    for source, target in ((first, second), (second, first)):
        threading.Thread(target=_pump, args=(source, target), daemon=True).start()


def _pump(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass
    finally:
        for sock, how in ((target, socket.SHUT_WR), (source, socket.SHUT_RD)):
            with contextlib.suppress(OSError):
                sock.shutdown(how)


def _relay(listener: socket.socket, socket_path: str) -> None:
    while True:
        client, _ = listener.accept()
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            upstream.connect(socket_path)
        except OSError:
            client.close()
            upstream.close()
            continue
        splice(client, upstream)


def parse_question(packet: bytes) -> tuple[str, int] | None:
    """The first question's name (lower case, no final dot) and where it ends; None if
    malformed."""
    if len(packet) < 12 or struct.unpack_from("!H", packet, 4)[0] < 1:
        return None
    labels: list[str] = []
    offset = 12
    while offset < len(packet):
        length = packet[offset]
        offset += 1
        if length == 0:
            end = offset + 4  # QTYPE, QCLASS
            return (".".join(labels).lower(), end) if end <= len(packet) else None
        if length > 63 or offset + length > len(packet):
            return None
        labels.append(packet[offset:offset + length].decode("ascii", errors="replace"))
        offset += length
    return None


def nxdomain(packet: bytes, question_end: int) -> bytes:
    """The answer to `packet`: same id and question, recursion available, NXDOMAIN."""
    (ident, flags) = struct.unpack_from("!HH", packet, 0)
    answer_flags = 0x8000 | (flags & 0x7900) | 0x0080 | 3  # QR, opcode+RD kept, RA, NXDOMAIN
    return struct.pack("!HHHHHH", ident, answer_flags, 1, 0, 0, 0) + packet[12:question_end]


def _responder(server: socket.socket, report: Report) -> None:
    while True:
        packet, sender = server.recvfrom(4096)
        question = parse_question(packet)
        if question is None:
            continue
        name, end = question
        if name:
            report.add(report.names, name)
        server.sendto(nxdomain(packet, end), sender)


def parse_packet(packet: bytes, version: int, relay_port: int) -> str | None:
    """`host:port` for a TCP SYN or a UDP datagram (IPv4 or IPv6, no extension headers) that is
    neither for the relay nor for the responder; None otherwise."""
    if version == 4 and len(packet) >= 20:
        header = (packet[0] & 0x0F) * 4
        protocol, address = packet[9], socket.inet_ntop(socket.AF_INET, packet[16:20])
        shown = address
    elif version == 6 and len(packet) >= 40:
        header, protocol = 40, packet[6]
        address = socket.inet_ntop(socket.AF_INET6, packet[24:40])
        shown = f"[{address}]"
    else:
        return None
    if (protocol == 6 and len(packet) < header + 14) or len(packet) < header + 4:
        return None
    source_port, port = struct.unpack_from("!HH", packet, header)
    loopback = address in ("127.0.0.1", "::1")
    if protocol == 6:
        flags = packet[header + 13]
        if not (flags & 0x02) or flags & 0x10:  # SYN without ACK: a new connection
            return None
        if loopback and port == relay_port:
            return None
    elif protocol == 17:
        if loopback and 53 in (port, source_port):  # a question to the responder, its answer
            return None
    else:
        return None
    return f"{shown}:{port}"


class Watcher:
    """AF_PACKET on lo: records what `parse_packet` reports."""

    def __init__(self, relay_port: int, report: Report) -> None:
        self.relay_port = relay_port
        self.report = report
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_ALL))
        self.sock.bind(("lo", 0))
        self.lock = threading.Lock()

    def _handle(self, packet: bytes, address: tuple) -> None:
        if address[2] != PACKET_HOST or not packet:
            return
        found = parse_packet(packet, packet[0] >> 4, self.relay_port)
        if found is not None:
            self.report.add(self.report.addresses, found)

    def run(self) -> None:
        while True:
            with self.lock:
                self.sock.settimeout(0.2)
                try:
                    packet, address = self.sock.recvfrom(65536)
                except TimeoutError:
                    continue
                except OSError:
                    return
                self._handle(packet, address)

    def drain(self) -> None:
        """Read what is queued now, without waiting."""
        with self.lock:
            self.sock.setblocking(False)
            while True:
                try:
                    packet, address = self.sock.recvfrom(65536)
                except (BlockingIOError, OSError):
                    return
                self._handle(packet, address)


# -- the command -----------------------------------------------------------------------------------


def _forward_signals(child: subprocess.Popen[bytes]) -> None:
    def forward(signum: int, frame: object) -> None:
        with contextlib.suppress(OSError):
            os.kill(child.pid, signum)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(signum, forward)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="llm-vcr-isolate")
    parser.add_argument("--probe", action="store_true")
    parser.add_argument("--socket")
    parser.add_argument("--port", type=int)
    parser.add_argument("--report")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    try:
        if args.probe:
            with tempfile.TemporaryDirectory(prefix="llm-vcr-probe-") as folder:
                enter_namespace(Path(folder))
            return 0
        enter_namespace(Path(args.report).parent)
    except SetupError as e:
        print(e, file=sys.stderr, flush=True)
        return PROBE_FAILED_EXIT
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    report = Report()
    listener = socket.create_server(("127.0.0.1", args.port), backlog=128)
    dns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dns.bind(("127.0.0.1", 53))
    watcher = Watcher(args.port, report)
    for target, extra in ((_relay, (listener, args.socket)), (_responder, (dns, report)),
                          (watcher.run, ())):
        threading.Thread(target=target, args=extra, daemon=True).start()
    try:
        child = subprocess.Popen(command)
    except OSError as e:
        print(f"llm-vcr: cannot run {command[0]}: {e.strerror}", file=sys.stderr, flush=True)
        return 127 if isinstance(e, FileNotFoundError) else 126
    _forward_signals(child)
    code = child.wait()
    watcher.drain()
    with report.lock:
        data = {"names": report.names, "addresses": report.addresses}
    Path(args.report).write_text(json.dumps(data))
    return 128 - code if code < 0 else code


if __name__ == "__main__":
    sys.stdout.flush()
    os._exit(main(sys.argv[1:]))
