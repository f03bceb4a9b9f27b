"""What the index stores about a peer and hands out about a source, and how sources are
chosen: the pure part, shared by the service and the platform."""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from peerindex.schema import SEP

_HOSTNAME = re.compile(r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                       r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*")
_VERSION = re.compile(r"[ -~]{0,40}")


def endpoint_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def network_of(host: str) -> str:
    """The network a host is in, for spreading sources: its /24 (IPv4) or /48 (IPv6), or
    the name itself. Peers in one network tend to share one uplink and fail together."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host.lower()
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)


def valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return bool(_HOSTNAME.fullmatch(host))
    return True


def valid_version(version: str) -> bool:
    return bool(_VERSION.fullmatch(version))


def peer_value(*, seen: int, user: int, host: str, port: int, version: str,
               device: str) -> str:
    """The live peer's record. ``seen`` first, ten digits wide, so a heartbeat rewrites
    it in place; the fragment last, ready to be copied into an answer."""
    fragment = json.dumps({"peer_id": device, "url": endpoint_url(host, port)},
                          separators=(",", ":"))[1:-1]
    return SEP.join([f"{seen:010d}", str(user), host, str(port), network_of(host), version,
                     fragment])


@dataclass(frozen=True, slots=True)
class PeerRecord:
    seen: int
    user: int
    host: str
    port: int
    network: str
    version: str
    fragment: str

    @classmethod
    def parse(cls, value: str) -> PeerRecord:
        seen, user, host, port, network, version, fragment = value.split(SEP, 6)
        return cls(int(seen), int(user), host, int(port), network, version, fragment)


@dataclass(frozen=True, slots=True)
class Source:
    """One live holder of a work, as a lookup returns it."""

    record: PeerRecord
    have: int
    bitfield: str  # base64; "" for a holder of every piece

    @property
    def peer_id(self) -> str:
        return str(json.loads("{" + self.record.fragment + "}")["peer_id"])

    @property
    def url(self) -> str:
        return endpoint_url(self.record.host, self.record.port)


def parse_sources(reply: Sequence[bytes | str | int]) -> list[Source]:
    """The flat triples the ``SOURCES`` script returns."""
    found = []
    for at in range(0, len(reply), 3):
        value, have, bits = reply[at], reply[at + 1], reply[at + 2]
        text = value.decode() if isinstance(value, bytes) else str(value)
        found.append(Source(PeerRecord.parse(text), int(have),
                            bits.decode() if isinstance(bits, bytes) else str(bits)))
    return found


def choose(candidates: Sequence[Source], n: int) -> list[Source]:
    """Up to ``n`` sources: most pieces first, then the freshest heartbeat; and spread
    across networks, taking the best of each network before a second from any."""
    ordered = sorted(candidates, key=lambda s: (-s.have, -s.record.seen, s.record.fragment))
    chosen: list[Source] = []
    taken: set[str] = set()
    rest: list[Source] = []
    for source in ordered:
        if source.record.network in taken:
            rest.append(source)
        else:
            taken.add(source.record.network)
            chosen.append(source)
    return (chosen + rest)[:n]


def render_source(source: Source, full_bitfield: str) -> bytes:
    """One source as JSON, from the stored fragment (no encoder on the hot path)."""
    bits = source.bitfield or full_bitfield
    return (b"{" + source.record.fragment.encode() + b',"bitfield":"' + bits.encode()
            + b'","have":' + str(source.have).encode() + b',"last_seen":'
            + str(source.record.seen).encode() + b"}")
