"""Private messages between members: blocks, reports, rate limits, sanitised bodies, and
ciphertext relayed for offline devices."""
