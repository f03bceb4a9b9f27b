"""Marking documents (PDF, EPUB) with the image mark's 64-bit payload.

A document carries the payload three ways, each read on its own: a keyed per-copy
identifier in its structure (`identifier`), the image mark on every raster image it
embeds, and a keyed text mark (`pdf`: small line and word shifts; `epub`: keyed choices
among equivalent characters). docs/WATERMARK.md has each method and what defeats it.
"""
