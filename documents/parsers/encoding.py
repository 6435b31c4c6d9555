"""Bytes to text: byte-order marks, UTF-16/32 without one, UTF-8, then charset-normalizer's best guess.

Among single-byte code pages, Windows-1252 (Western European, the one of most office files) is preferred
whenever the text reads as it: charset-normalizer, from a few accented letters, often names another
(cp1250, "Naïve" read as "Naďve"). Another is kept only where the text clearly is in another language
(see `_reads_as_cp1252`). The encoding is chosen from the first SAMPLE_BYTES; when bytes further on do
not fit it, it is chosen again from a sample that starts where they are.
"""

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
WIDE = ("utf-32-le", "utf-32-be", "utf-16-le", "utf-16-be")
# Characters that sit between letters in a word only when the text is not Windows-1252 (cp1250's ł ą ż ş ľ
# read as ³ ¹ ¿ º ¾ ...); apostrophes and the middle dot do in Western languages too.
WORD_PUNCTUATION = "’‘'`´·"
# Letters of Windows-1252 that stand for more common ones of other code pages: ð þ ý (Turkish ğ ş ı, Baltic
# š ž, Romanian ţ, Croatian đ), ì ò ù inside a word (Czech ě ň ů: Italian puts them at a word's end) and õ
# but before an e (Hungarian ő: Portuguese has it in -ões and -õe only).
FOREIGN = set("ðþýÐÞÝ")
FOREIGN_INSIDE = set("ìòùÌÒÙ")


def _wide(sample):
    """UTF-16 or UTF-32 (little or big endian) without a byte-order mark, told by where its NULs fall."""
    size = len(sample) - len(sample) % 4
    if size < 8 or b"\x00" not in sample:
        return None
    quads = size // 4
    by_position = [sample[i:size:4].count(0) for i in range(4)]
    pairs = [by_position[0] + by_position[2], by_position[1] + by_position[3]]
    candidates = []
    # UTF-32: the top two bytes of every character of the Basic Multilingual Plane are NUL.
    if min(by_position[2:]) >= quads * 0.9 and by_position[0] < quads * 0.5:
        candidates.append("utf-32-le")
    if min(by_position[:2]) >= quads * 0.9 and by_position[3] < quads * 0.5:
        candidates.append("utf-32-be")
    # Latin text has a NUL in every other byte; other scripts at least in their spaces, digits and stops.
    if pairs[1] >= quads * 2 * 0.05 and pairs[0] <= pairs[1] * 0.05:
        candidates.append("utf-16-le")
    if pairs[0] >= quads * 2 * 0.05 and pairs[1] <= pairs[0] * 0.05:
        candidates.append("utf-16-be")
    for name in candidates:
        try:
            text = sample[:size].decode(name)
        except UnicodeDecodeError as exc:
            if exc.start < size - 4:  # else a pair of surrogates cut by the sample's end
                continue
            text = sample[: exc.start].decode(name)
        printable = sum(ch.isprintable() or ch in "\n\r\t\f" for ch in text)
        # Read two by two, ASCII text with a few NULs in it would be printable too: as rare CJK characters.
        paired = sum(_ascii_pair(ord(ch)) for ch in text)
        if printable >= len(text) * 0.95 and paired < len(text) / 2:
            return name
    return None


def _ascii_pair(code):
    """Whether a character read from two bytes was two printable ASCII characters."""
    return 0x20 <= code >> 8 <= 0x7E and 0x20 <= code & 0xFF <= 0x7E


def _reads_as_cp1252(data, other):
    """Whether bytes that decode in the single-byte code page `other` read as well in Windows-1252."""
    try:
        western = data.decode("cp1252")
    except UnicodeDecodeError:
        return False
    read = data.decode(other, errors="replace")
    if western == read:
        return True
    letters = [ch for ch in western if ch.isalpha()]
    if len(letters) >= 4 and sum(not ch.isascii() for ch in letters) > len(letters) / 2:
        return False  # a script of its own (Cyrillic, Greek, Hebrew, Arabic…) read as accented Latin letters
    same_length = len(read) == len(western)
    for index, ch in enumerate(western):
        if ch.isascii() or (same_length and read[index] == ch):
            continue  # only the letters the two code pages read differently tell them apart
        after = western[index + 1 : index + 2]
        if ch in FOREIGN or (ch in "õÕ" and after not in ("e", "E")):
            return False
        if not after.isalpha():
            continue
        before = western[index - 1 : index]
        if before.isalpha() and not ch.isalpha() and ch not in WORD_PUNCTUATION:
            return False
        if ch in FOREIGN_INSIDE:
            return False
    return True


def _guess(data):
    """charset-normalizer's best guess for the bytes, or None; Windows-1252 where it reads as well."""
    from charset_normalizer import from_bytes
    from charset_normalizer.utils import is_multi_byte_encoding

    best = from_bytes(data).best()
    if best is None:
        return None
    encoding = best.encoding
    single_byte = encoding not in {"ascii", "utf_8", "cp1252"} and not is_multi_byte_encoding(encoding)
    return "cp1252" if single_byte and _reads_as_cp1252(data, encoding) else encoding


def detect_encoding(data):
    """The encoding of the bytes, or None when they do not look like text."""
    for bom, name in BOMS:
        if data.startswith(bom):
            return name
    sample = data[:SAMPLE_BYTES]
    wide = _wide(sample)
    if wide:
        return wide
    try:
        sample.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        # A multi-byte character cut by the sample's end is still UTF-8.
        if len(data) > SAMPLE_BYTES and exc.start >= SAMPLE_BYTES - 4 and b"\x00" not in sample:
            return "utf-8"
    if b"\x00" in sample:
        return None
    return _guess(sample)


def decode(data):
    encoding = detect_encoding(data)
    if encoding is None:
        raise ParseError("The text encoding of this file could not be recognised.")
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        failed_at = exc.start
    # Bytes after the sample do not fit. Where the sample was plain ASCII it said nothing of the encoding:
    # choose again from a sample that starts a little before them. (A UTF-8 sample with accents, or a wide
    # or single-byte encoding, stays: the odd bytes are replaced.)
    if encoding in {"utf-8", "ascii"} and data[:failed_at].isascii():
        again = _guess(data[max(0, failed_at - 1024) : failed_at + SAMPLE_BYTES])
        if again:
            encoding = again
    return data.decode(encoding, errors="replace")
