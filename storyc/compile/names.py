"""Names that look alike: '@еllie' with a Cyrillic 'е' reads as '@ellie' but is not it.

A reference is `@` and ASCII letters, digits and '_'.  Text that only looks
like one is sent to the model as plain text, and the scene silently loses
its character: worth a warning.  The folding is a small part of Unicode's
confusables (UTS #39 skeletons): NFKC, then letters of scripts that pass for
Latin ones, then ASCII's own I/l/1 and O/0.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

# Letters that look like ASCII ones, after Unicode's confusables.txt: Cyrillic, Greek and Armenian
# lookalikes first, then ASCII's own I/l/1 and O/0 (NFKC already folds fullwidth and math letters).
_LOOKALIKES = str.maketrans(
    {
        **dict.fromkeys("\u0430\u03b1", "a"),
        **dict.fromkeys("\u0441", "c"),
        **dict.fromkeys("\u0501", "d"),
        **dict.fromkeys("\u0435", "e"),
        **dict.fromkeys("\u04bb", "h"),
        **dict.fromkeys("\u0456\u03b9", "i"),
        **dict.fromkeys("\u0458", "j"),
        **dict.fromkeys("\u03ba", "k"),
        **dict.fromkeys("\u04cf\u0406\u0399", "l"),  # 'l' and the capital I look alike
        **dict.fromkeys("\u043e\u03bf", "o"),
        **dict.fromkeys("\u0440\u03c1", "p"),
        **dict.fromkeys("\u051b", "q"),
        **dict.fromkeys("\u0455", "s"),
        **dict.fromkeys("\u057d\u03c5", "u"),
        **dict.fromkeys("\u0475\u03bd", "v"),
        **dict.fromkeys("\u051d", "w"),
        **dict.fromkeys("\u0445\u03c7", "x"),
        **dict.fromkeys("\u0443", "y"),
        **dict.fromkeys("\u0410\u0391", "A"),
        **dict.fromkeys("\u0412\u0392", "B"),
        **dict.fromkeys("\u0421", "C"),
        **dict.fromkeys("\u0415\u0395", "E"),
        **dict.fromkeys("\u041d\u0397", "H"),
        **dict.fromkeys("\u0408", "J"),
        **dict.fromkeys("\u041a\u039a", "K"),
        **dict.fromkeys("\u041c\u039c", "M"),
        **dict.fromkeys("\u039d", "N"),
        **dict.fromkeys("\u041e\u039f0", "O"),
        **dict.fromkeys("\u0420\u03a1", "P"),
        **dict.fromkeys("\u0405", "S"),
        **dict.fromkeys("\u0422\u03a4", "T"),
        **dict.fromkeys("\u0425\u03a7", "X"),
        **dict.fromkeys("\u0423\u03a5", "Y"),
        **dict.fromkeys("\u0396", "Z"),
        **dict.fromkeys("I1|", "l"),
    }
)

_LOOKALIKE_SCRIPTS = frozenset({"CYRILLIC", "GREEK", "ARMENIAN"})  # scripts with letters that pass for Latin ones


def skeleton(name: str) -> str:
    """What a name looks like: equal skeletons read the same ('ellie', 'eIlie', 'еllie' in Cyrillic)."""
    return unicodedata.normalize("NFKC", name).translate(_LOOKALIKES).replace("rn", "m")


def scripts(word: str) -> list[str]:
    """The scripts of a word's letters, in order of first use ('LATIN', 'CYRILLIC', ...)."""
    found: list[str] = []
    for char in unicodedata.normalize("NFKC", word):
        if char.isalpha():
            script = unicodedata.name(char, "UNKNOWN").split(" ")[0]
            if script not in found:
                found.append(script)
    return found


def lookalike_problem(word: str, names: Iterable[str]) -> str | None:
    """Why '@word' (not ASCII) is a trap: it looks like a declared name, or mixes Latin with another script."""
    if word.isascii():
        return None
    by_look = {skeleton(n): n for n in names}
    foreign = next((c for c in word if not c.isascii() and c.isalpha()), word[0])
    letter = f"its '{foreign}' is U+{ord(foreign):04X} {unicodedata.name(foreign, 'UNKNOWN')}"
    twin = by_look.get(skeleton(word))
    if twin is not None:
        return f"'@{word}' looks like '@{twin}' but is not it: {letter}, so it is plain text, not a reference"
    used = scripts(word)
    if "LATIN" in used and _LOOKALIKE_SCRIPTS.intersection(used):
        return (
            f"'@{word}' mixes {' and '.join(s.title() for s in used)} letters ({letter}); "
            "a reference is ASCII letters, digits and '_', so this is plain text"
        )
    return None
