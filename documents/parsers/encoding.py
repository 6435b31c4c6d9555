"""Bytes to text: byte-order marks, then UTF-8, then charset-normalizer's best guess."""

import codecs

from documents.parsers.base import ParseError

BOMS = [
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
]
SAMPLE_BYTES = 256 * 1024


def detect_encoding(data):
    """The encoding of the bytes, or None when they do not look like text."""
    for bom, name in BOMS:
        if data.startswith(bom):
            return name
    try:
        data[:SAMPLE_BYTES].decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        # A multi-byte character cut by the sample's end is still UTF-8.
        if exc.start >= min(len(data), SAMPLE_BYTES) - 4 and b"\x00" not in data[:SAMPLE_BYTES]:
            return "utf-8"
    if b"\x00" in data[:SAMPLE_BYTES]:
        return None
    from charset_normalizer import from_bytes

    best = from_bytes(data[:SAMPLE_BYTES]).best()
    return best.encoding if best is not None else None


def decode(data):
    encoding = detect_encoding(data)
    if encoding is None:
        raise ParseError("The text encoding of this file could not be recognised.")
    return data.decode(encoding, errors="replace")
