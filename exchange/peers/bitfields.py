"""Bitfields of held pieces, as BitTorrent lays them out: bit i is the (i % 8)-th most
significant bit of byte i // 8, and the spare bits of the last byte are zero.

The agent's own module is the one definition (pure, stdlib only): the platform checks an
announced bitfield by exactly the rule the agents that send it use.
"""

from licensing.core.bitfield import (
    BitfieldError,
    bitfield_count,
    bitfield_decode,
    bitfield_encode,
)

__all__ = ["BitfieldError", "bitfield_count", "bitfield_decode", "bitfield_encode"]
