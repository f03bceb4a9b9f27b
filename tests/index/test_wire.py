"""wire.py's packed announce against the reference: hiredis packing each command of
``store.announce_commands`` for the same announce (the platform's path, and the one the
service used before), between MULTI and EXEC."""

from __future__ import annotations

from dataclasses import dataclass

import hiredis
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peerindex import wire
from peerindex.store import Held, announce_commands

WORKS = [f"work-{n:04d}-ef0c2a4e-5d3f-4d2e-8a51-{n:012d}" for n in range(40)]


@dataclass(frozen=True)
class Announce:
    device: str
    held: list[Held]
    user: int = 1
    host: str = "10.0.0.1"
    port: int = 7000
    version: str = "1"
    now: int = 1_700_000_000
    peer_ttl: int = 90

    def packed(self, packer: wire.AnnounceWire) -> tuple[bytes, int]:
        return packer.announce(device=self.device, user=self.user, host=self.host,
                               port=self.port, version=self.version, held=self.held,
                               now=self.now, peer_ttl=self.peer_ttl)

    def reference(self) -> tuple[bytes, int]:
        commands = announce_commands(device=self.device, user=self.user, host=self.host,
                                     port=self.port, version=self.version, held=self.held,
                                     now=self.now, peer_ttl=self.peer_ttl)
        packed = [hiredis.pack_command(("MULTI",)),
                  *(hiredis.pack_command(tuple(c)) for c in commands),  # type: ignore[arg-type]
                  hiredis.pack_command(("EXEC",))]
        return b"".join(packed), len(commands)


#: any text but surrogates (which neither side can encode): lengths are bytes, not characters
TEXT = st.characters(exclude_categories=("Cs",))

holdings = st.lists(
    st.builds(Held, st.one_of(st.sampled_from(WORKS), st.text(TEXT, min_size=1, max_size=8)),
              st.one_of(st.just(0), st.integers(1, 5000), st.integers(5001, 10**9)),
              st.one_of(st.just(""), st.text("ABCDEFabcdef0123456789-_", min_size=1,
                                             max_size=40))),
    max_size=60)


@settings(max_examples=300, deadline=None)
@given(held=holdings, device=st.text(TEXT, min_size=1, max_size=43),
       user=st.integers(1, 10**9), port=st.integers(1, 65535),
       version=st.text(TEXT, max_size=12), now=st.integers(0, 2**33),
       peer_ttl=st.integers(1, 10**6), host=st.sampled_from(["10.0.0.1", "2001:db8::7"]))
def test_the_packed_announce_is_byte_for_byte_hiredis_packing_announce_commands(
        held: list[Held], device: str, user: int, port: int, version: str, now: int,
        peer_ttl: int, host: str) -> None:
    # Only holdings of pieces have a bitfield (a stopped work's has none).
    held = [Held(h.work, h.have, h.bitfield if h.have else "") for h in held]
    announce = Announce(device, held, user, host, port, version, now, peer_ttl)
    assert announce.packed(wire.AnnounceWire()) == announce.reference()


def test_the_remembered_works_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wire, "MAX_WORKS", 10)
    packer = wire.AnnounceWire()
    for _ in range(3):
        for work in WORKS:
            announce = Announce("dev", [Held(work, 7, "gA")])
            assert announce.packed(packer) == announce.reference()
            assert len(packer) <= 10
