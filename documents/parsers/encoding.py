"""Bytes to text: byte-order marks, UTF-16/32 without one, UTF-8, then charset-normalizer's best guess.

Among single-byte code pages, charset-normalizer's choice is kept unless its Windows-1252 reading is
clearly Western European: from a few accented letters it often names another (cp1250, "Naïve" read as
"Naďve"), but as often rightly (cp1250's "Poročilo" is "Poroèilo" in Windows-1252). The letters the two
read differently decide, each by the letters around it (see `_reads_as_cp1252`). The encoding is chosen from the first SAMPLE_BYTES; when bytes further on do
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
# Symbols of Windows-1252 that are letters of cp1250 (ą ł ż ş ľ Ą Ł Ż Ş Ľ): next to a letter, the text is not
# Western ("otrzymuj¹", "¼udské").
SYMBOL_LETTERS = set("¹³¿º¾¥£¯ª¼")
# Letters of Windows-1252 that stand for more common ones of other code pages: ð þ ý (Turkish ğ ş ı, Baltic
# š ž, Romanian ţ, Croatian đ), ì ò ù inside a word (Czech ě ň ů: Italian puts them at a word's end) and õ
# but before an e (Hungarian ő: Portuguese has it in -ões and -õe only).
FOREIGN = set("ðþýÐÞÝ")
FOREIGN_INSIDE = set("ìòùÌÒÙ")
VOWELS = set("aeiouyáàâäãåéèêëíìîïóòôöõøúùûüýæœ")
UNITS = {"m", "cm", "dm", "km", "mm"}
# What one letter read differently says: the text is not Western (decisive), it likely is not (one vote
# against), it is (one vote for).
NOT_WESTERN, DOUBT, WESTERN = "not western", -1, 1


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
    """Whether bytes that the single-byte code page `other` decodes are rather Windows-1252: only where some
    letter the two read differently fits a Western language and none fits only `other`'s."""
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
    if len(read) != len(western):
        return False
    votes = 0
    for index, ch in enumerate(western):
        if ch.isascii() or read[index] == ch:
            continue  # only the letters the two code pages read differently tell them apart
        sign = _sign(western, index, read[index])
        if sign == NOT_WESTERN:
            return False
        votes += sign or 0
    return votes > 0


def _sign(text, index, theirs):
    """What the character at `index` of the Windows-1252 reading, which another code page reads as
    `theirs`, says of the text: NOT_WESTERN, DOUBT, WESTERN or None."""
    ch = text[index]
    low = ch.lower()
    before = text[index - 1 : index]
    after = text[index + 1 : index + 2]
    starts = not before.isalpha()
    ends = not after.isalpha()
    if not ch.isalpha():
        if not theirs.isalpha():
            return None
        if not starts and not ends and ch not in WORD_PUNCTUATION:
            return NOT_WESTERN  # "wie¿a", "³¹ka"
        if ch not in SYMBOL_LETTERS or (starts and ends):
            return None
        if ch == "¿" and starts:
            return WESTERN if after.isupper() else DOUBT  # Spanish "¿Qué?"; Polish "¿ona" (żona)
        if ch in "³º" and ends and _word_before(text, index) in UNITS | {"N", "n"}:
            return None  # m³, Nº
        return NOT_WESTERN  # "otrzymuj¹", "¼udské"
    if not theirs.isalpha():
        return WESTERN  # ÿ read as ˙, ì as a combining accent
    if ch in FOREIGN:
        return NOT_WESTERN
    if ch in FOREIGN_INSIDE and not starts and not ends:
        return NOT_WESTERN
    if low == "õ":
        return WESTERN if after in ("e", "E") else NOT_WESTERN
    if low == "è":
        # French and Italian è comes before a consonant or ends a word; Slavic č before vowels, after ú.
        if after.lower() in VOWELS or (before.isalpha() and not before.isascii()):
            return NOT_WESTERN  # "Poroèilo", "úètovníctvo"
        if starts and not ends and after.lower() != "r":
            return NOT_WESTERN  # "èlovek" (člověk); French has "ère" only
        return WESTERN
    if low == "ê":
        if before.lower() == "i":
            return NOT_WESTERN  # "siê", "miêdzy" (się, między)
        return DOUBT if ends and not starts else None  # "pracê" (pracę); Portuguese "você"
    if low == "æ":
        if after.lower() in VOWELS:
            return NOT_WESTERN  # "Izvješæe", "kuæa" (ć)
        return DOUBT if ends else WESTERN  # "byæ" (być); Danish "være"
    if low == "œ":
        return WESTERN if after.lower() in VOWELS else NOT_WESTERN  # "cœur", "œil"; "œwiadczenia" (ś)
    if low == "ñ":
        return WESTERN if after.lower() in VOWELS else NOT_WESTERN  # "niño"; "dzieñ" (dzień)
    if low == "ï":
        return WESTERN if before.lower() in VOWELS else DOUBT  # "naïve", "héroïne"; "ïalší" (ďalší)
    if low == "à":
        return WESTERN if ends else None  # "à", "città", "déjà"
    if low == "ã":
        if after.lower() in ("o", "e") or ends or (after == "s" and not text[index + 2 : index + 3].isalpha()):
            return WESTERN  # "não", "mãe", "irmã", "irmãs"
        return NOT_WESTERN  # Romanian ă: "pãnã" (până)
    if low == "ø":
        return DOUBT if after.lower() in VOWELS else WESTERN  # Czech "pøi" (při); Danish "søndag"
    if low in ("å", "û"):
        return WESTERN  # Swedish "på", French "brûlée"; Slovak ĺ and Hungarian ű are rare
    if low == "ò" and ends and before.isalpha() and before.lower() not in VOWELS:
        return WESTERN  # Italian "però"
    return None


def _word_before(text, index):
    """The letters just before `index`."""
    start = index
    while start > 0 and text[start - 1].isalpha():
        start -= 1
    return text[start:index]


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
