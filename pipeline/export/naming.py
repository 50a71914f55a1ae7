"""Names an export gives its files: WebDataset keys, human names, VBench names.

Plain functions over strings, so every rule is testable on its own. Prompts are hostile
(slashes, control characters, RTL overrides, emoji, 1,000-character texts), and the
same bytes must name a file on ext4, APFS, NTFS and an object store alike.
"""

from __future__ import annotations

import hashlib
import unicodedata

# ext4, APFS and NTFS all stop at 255 (bytes, bytes, UTF-16 units; a UTF-8 byte
# count bounds the UTF-16 unit count, so one check covers all three).
MAX_NAME_BYTES = 255
DEFAULT_STEM_BYTES = 120  # the prompt part of a human name; the rest is seed + suffix + ext
UNTITLED = "untitled"  # a prompt with nothing left after cleaning (".", "   ", "???")
# Characters Windows refuses in a name; "/" and NUL are the POSIX ones.
REFUSED = frozenset('/\\:*?"<>|')
# Joiners kept inside a name: emoji sequences and Persian/Indic scripts need them.
KEPT_FORMAT = frozenset("\u200c\u200d")
ZWJ = "\u200d"
REGIONAL_INDICATORS = "".join(map(chr, range(0x1F1E6, 0x1F200)))  # two make a flag
# Device names Windows reserves whatever the extension: "con.txt" is the console too.
WINDOWS_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"{dev}{n}" for dev in ("COM", "LPT") for n in (*"0123456789", "¹", "²", "³")}
)
STRIPPED = " ._"  # no human name starts or ends with a dot, space or underscore


def webdataset_key(ordinal: int) -> str:
    """A sample key: WebDataset splits a member name at its first dot, so keys are
    digits only (zero-padded to sort in order; wider past a billion samples)."""
    return f"{ordinal:09d}"


def _clean_char(char: str) -> str:
    if char in REFUSED or char.isspace():
        return "_"
    category = unicodedata.category(char)
    # Cc: controls (NUL, newline, ESC); Cf: invisible format characters, including the
    # bidi overrides (U+202E) that make "evil\u202egpj.exe" display as "evilexe.jpg";
    # Cs: lone surrogates, which UTF-8 cannot encode; Zl/Zp: line/paragraph separators.
    if category in ("Cc", "Cs", "Zl", "Zp") or (category == "Cf" and char not in KEPT_FORMAT):
        return "_"
    return char


def _attaches_to_previous(char: str) -> bool:
    """A combining mark, variation selector or emoji skin tone: part of the character
    before it, so a cut must not separate the two."""
    return unicodedata.category(char) in ("Mn", "Me") or "\U0001f3fb" <= char <= "\U0001f3ff"


def cut_to_bytes(text: str, budget: int) -> str:
    """The longest prefix of `text` within `budget` UTF-8 bytes that ends on a character
    boundary, keeps each base character with its marks, and does not end in a dangling
    joiner or half a flag (flags are pairs of regional indicators)."""
    if len(text.encode("utf-8")) <= budget:
        return text
    cut = text.encode("utf-8")[:budget].decode("utf-8", errors="ignore")
    following = text[len(cut)]
    while cut and _attaches_to_previous(following):
        following, cut = cut[-1], cut[:-1]
    cut = cut.rstrip(ZWJ)
    flags = len(cut) - len(cut.rstrip(REGIONAL_INDICATORS))
    if flags % 2 and following in REGIONAL_INDICATORS:
        cut = cut[:-1]
    return cut


def human_stem(text: str, budget: int = DEFAULT_STEM_BYTES) -> str:
    """A prompt as the readable start of a file name: NFC, spaces and refused characters
    as `_`, cut to `budget` bytes, no leading/trailing dot, space or underscore, never a
    Windows device name, never empty."""
    text = unicodedata.normalize("NFC", text or "")
    cleaned = "".join(_clean_char(char) for char in text.strip(" ."))
    stem = cut_to_bytes(cleaned.strip(STRIPPED), budget).strip(STRIPPED) or UNTITLED
    if stem.split(".", 1)[0].rstrip(" ").upper() in WINDOWS_RESERVED:
        stem = f"{stem}_"  # "con.txt" -> "con.txt_" is a plain name on Windows
    return stem


def human_name(text: str, seed, ext: str, budget: int = DEFAULT_STEM_BYTES) -> str:
    """`anime, cute rat` + seed 3048053658270753 -> `anime,_cute_rat_seed3048053658270753.mp4`."""
    return f"{human_stem(text, budget)}_seed{seed}.{ext}"


def _with_suffix(name: str, row_id: str, length: int) -> str:
    base, dot, ext = name.rpartition(".")
    return f"{base}_{hashlib.sha256(row_id.encode()).hexdigest()[:length]}{dot}{ext}"


def unique_names(names: list[str], row_ids: list[str]) -> list[str]:
    """Make names unique on a case-insensitive file system: the first row (in catalog
    order) keeps its name; a later row whose name collides (ignoring case) gets `_` and
    the first 6 hex digits of its id's sha256, longer if that still collides. A name
    ends `_seed<digits>` before any suffix, so a suffixed name can't equal a plain one."""
    taken: set[str] = set()
    out = []
    for name, row_id in zip(names, row_ids):
        candidate, length = name, 6
        while candidate.casefold() in taken:
            candidate = _with_suffix(name, row_id, length)
            length += 2
        taken.add(candidate.casefold())
        out.append(candidate)
    return out


def vbench_file_name(name: str, index: int, ext: str) -> str:
    """VBench looks up `f"{prompt}-{i}{ext}"` verbatim, so the name is not cleaned."""
    return f"{name}-{index}.{ext}"


def vbench_name_problem(name, index: int, ext: str) -> str | None:
    """Why `name` cannot be a VBench file name, or None."""
    if not isinstance(name, str):
        return "is not text"
    if not name:
        return "is empty"
    if "/" in name or "\x00" in name:
        return "contains '/' or NUL, which no file name can hold"
    size = len(vbench_file_name(name, index, ext).encode("utf-8"))
    if size > MAX_NAME_BYTES:
        return f"makes a {size}-byte file name (the limit is {MAX_NAME_BYTES} bytes)"
    return None
