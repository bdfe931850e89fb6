"""The one rule for a text with nothing to read, used wherever texts come in (training data,
``Predictor``, predict.py, the service).

``str.strip`` knows whitespace only, so a tweet made of a zero-width space, a lone byte-order
mark, a soft hyphen or NULs would reach the model as [CLS] [SEP] (or [UNK]) and get a
confident label, while a blank one is marked empty. Here a text is blank when every character
is a control (Cc), format (Cf: zero-width spaces and joiners, U+2060, the BOM, the soft
hyphen) or separator (Zs, Zl, Zp) character in Unicode's categories.
"""

from __future__ import annotations

import unicodedata

INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp"})


def is_blank(text: str) -> bool:
    """True when ``text`` has no visible character (empty, whitespace, zero-width, control)."""
    return all(unicodedata.category(char) in INVISIBLE_CATEGORIES for char in text)
