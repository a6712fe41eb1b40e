"""English number words, for the spoken form of normalized timestamps (``42`` -> forty two)."""

from __future__ import annotations

import re
from typing import List, Optional

__all__ = ["number_words"]

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((10**9, "billion"), (10**6, "million"), (10**3, "thousand"))
# Digits with optional thousands separators ("1,234") and a decimal part ("3.5").
_NUMBER = re.compile(r"(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?")


def _below_thousand(n: int) -> List[str]:
    out: List[str] = []
    if n >= 100:
        out += [_ONES[n // 100], "hundred"]
        n %= 100
    if n >= 20:
        out.append(_TENS[n // 10])
        n %= 10
    if n:
        out.append(_ONES[n])
    return out


def number_words(text: str) -> Optional[List[str]]:
    """The words a number is read as (American style, no "and"), or ``None`` if ``text`` is not
    a number below 10**12.

    ``"42"`` -> ``["forty", "two"]``; ``"1,234"`` -> one thousand two hundred thirty four;
    ``"3.05"`` -> three point zero five; ``"007"`` (a leading zero) is read digit by digit.
    """
    m = _NUMBER.fullmatch(text)
    if m is None:
        return None
    digits, decimals = m.group(1).replace(",", ""), m.group(2)
    if len(digits) > 1 and digits[0] == "0":
        words = [_ONES[int(d)] for d in digits]
    else:
        n = int(digits)
        if n >= 10**12:
            return None
        words = [] if n else ["zero"]
        for value, name in _SCALES:
            if n >= value:
                words += _below_thousand(n // value) + [name]
                n %= value
        words += _below_thousand(n)
    if decimals:
        words += ["point"] + [_ONES[int(d)] for d in decimals]
    return words
