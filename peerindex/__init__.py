"""The peer index's fast path: announces, heartbeats and source lookups at tracker speed.

A small service of its own (plain ASGI under uvicorn), stateless but for Redis, which any
number of its processes share. It knows the platform only through Redis (the works on sale,
revocations) and a key (the index credentials the platform signs); docs/INDEX.md.
"""
