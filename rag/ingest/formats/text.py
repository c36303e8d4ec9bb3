"""Plain text and Markdown: the file's own text, so spans and lines are the file's.

UTF-8 (with or without a byte-order mark) is read as it is; UTF-16 or UTF-32 with a byte-order mark,
and legacy encodings such as Latin-1 or Windows-1252, are decoded with charset-normalizer. Line ends
become "\n" (universal newlines). Binary content (NUL bytes without a UTF-16/32 mark) and text no
encoding explains are refused with `UnreadableFile`. Structure is left to `rag.ingest.load.parse`.
"""

from __future__ import annotations

import codecs

from rag.errors import UnreadableFile
from rag.ingest.formats import Extracted

_WESTERN = "cp1252"
_WESTERN_PUNCTUATION = set("“”‘’–—…€•«»°·§©®™£¥¢±×÷¿¡\u00a0")
_PUNCTUATION = set(".,;:!?'\"()[]-–—“”‘’/%&*+=#@$€£¥§°·…<>«»_|")
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def decode(data: bytes, name: str) -> str:
    """`data` as text with universal newlines; UnreadableFile names `name` and why otherwise."""
    text = _decode(data, name)
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _decode(data: bytes, name: str) -> str:
    for bom, encoding in _BOMS:  # UTF-32-LE's mark starts with UTF-16-LE's: longest first
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError as exc:
                raise UnreadableFile(name, f"not valid {encoding.upper()} (byte {exc.start})") from None
    if b"\x00" in data[:8192]:
        raise UnreadableFile(name, "looks binary (NUL bytes), not a text document")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        first_bad = exc.start
    western = _western(data)
    if western is not None:
        return western
    from charset_normalizer import from_bytes  # only for files that are neither UTF-8 nor Western

    matches = from_bytes(data)
    best = matches.best()
    if best is None or best.encoding is None:
        raise UnreadableFile(name, f"not text in any encoding charset-normalizer knows (not UTF-8 at byte "
                                   f"{first_bad}: {data[first_bad:first_bad + 1]!r})")
    # Short texts fit many code pages equally well; then Windows-1252 (what browsers read Latin-1 as) wins.
    ties = [m for m in matches if m.chaos <= best.chaos + 0.01 and m.coherence >= best.coherence - 0.01]
    try:
        text = data.decode(best.encoding)
    except (UnicodeDecodeError, LookupError):
        text = ""  # charset-normalizer's guess does not hold for the whole file
    if any(_WESTERN in m.could_be_from_charset for m in ties):
        try:
            text = data.decode(_WESTERN)
        except UnicodeDecodeError:
            pass
    if not _looks_like_text(text):
        raise UnreadableFile(name, f"looks binary, not a text document (not UTF-8 at byte {first_bad}, and "
                                   f"as {best.encoding} it is mostly symbols)")
    return text


def _western(data: bytes) -> str | None:
    """`data` as Windows-1252 when that reads as Western European text: every non-ASCII character a
    Latin-1 letter or common punctuation, and few of them (a Cyrillic or Greek code page's bytes are
    Latin-1 letters too, but nearly all of a word's letters); else None."""
    try:
        text = data.decode(_WESTERN)
    except UnicodeDecodeError:
        return None
    high = [c for c in text if ord(c) > 127]
    letters = sum(1 for c in text if c.isalpha())
    if all(c in _WESTERN_PUNCTUATION or (c.isalpha() and ord(c) < 0x180) for c in high) \
            and len(high) <= 0.5 * max(1, letters):
        return text
    return None


def _looks_like_text(text: str) -> bool:
    """Mostly letters, digits, spaces and ordinary punctuation: what a decoded binary file is not."""
    sample = text[:20000]
    odd = sum(1 for c in sample if not (c.isalnum() or c.isspace() or c in _PUNCTUATION))
    return odd <= 0.1 * len(sample)


def convert(data: bytes, name: str) -> Extracted:
    return Extracted(decode(data, name))
