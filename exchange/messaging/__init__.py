"""Private messages between members: blocks, reports, rate limits, sanitised bodies."""
