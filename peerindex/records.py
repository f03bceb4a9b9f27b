"""What the index stores about a peer and hands out about a source, and how sources are
chosen: the pure part, shared by the service and the platform."""

from __future__ import annotations

import functools
import ipaddress
import json
import re
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
    it in place; then what a lookup needs (network, the answer's fragment as JSON), so it
    takes them with one split; then the rest, for the durable record."""
    return f"{seen:010d}{SEP}{_peer_rest(user, host, port, version, device)}"


@functools.lru_cache(maxsize=65_536)
def _peer_rest(user: int, host: str, port: int, version: str, device: str) -> str:
    """All of a record but ``seen``: the same at each of a peer's announces, and a
    third of an announce's own time to build (an address parsed twice, a JSON encoder),
    so remembered for the peers announcing now."""
    fragment = json.dumps({"peer_id": device, "url": endpoint_url(host, port)},
                          separators=(",", ":"))[1:-1]
    return SEP.join([network_of(host), fragment, str(user), host, str(port), version])


@dataclass(frozen=True, slots=True)
class PeerRecord:
    seen: int
    network: str
    fragment: str
    user: int
    host: str
    port: int
    version: str

    @classmethod
    def parse(cls, value: str) -> PeerRecord:
        seen, network, fragment, user, host, port, version = value.split(SEP, 6)
        return cls(int(seen), network, fragment, int(user), host, int(port), version)


#: A lookup's candidate, kept in bytes on the hot path: (pieces held, seen as ten digits,
#: network, fragment, bitfield or b"", the whole record, the device).
Candidate = tuple[int, bytes, bytes, bytes, bytes, bytes, bytes]


def choose(found: list[Candidate], n: int) -> list[Candidate]:
    """Up to ``n`` sources: most pieces first, then the freshest heartbeat; and spread
    across networks, taking the best of each network before a second from any."""
    found = sorted(found, reverse=True)  # a remembered answer is shared: not in place
    chosen: list[Candidate] = []
    rest: list[Candidate] = []
    taken: set[bytes] = set()
    for candidate in found:
        if candidate[2] in taken:
            rest.append(candidate)
        else:
            taken.add(candidate[2])
            chosen.append(candidate)
            if len(chosen) == n:
                return chosen
    return (chosen + rest)[:n]


def render(candidate: Candidate, full_bitfield: bytes) -> bytes:
    """One source as JSON, from the stored fragment (no encoder on the hot path)."""
    have, seen, _, fragment, bits, _, _ = candidate
    return b'{%s,"bitfield":"%s","have":%d,"last_seen":%s}' % (
        fragment, bits or full_bitfield, have, seen.lstrip(b"0") or b"0")


@dataclass(frozen=True, slots=True)
class Source:
    """One live holder of a work, for the platform's side (not the hot path)."""

    record: PeerRecord
    have: int
    bitfield: str  # base64; "" for a holder of every piece

    @property
    def peer_id(self) -> str:
        return str(json.loads("{" + self.record.fragment + "}")["peer_id"])

    @property
    def url(self) -> str:
        return endpoint_url(self.record.host, self.record.port)

    @classmethod
    def of(cls, candidate: Candidate) -> Source:
        return cls(PeerRecord.parse(candidate[5].decode()), candidate[0], candidate[4].decode())
