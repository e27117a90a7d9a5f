"""Flesch reading ease, with a small syllable heuristic good enough for plain English.

206.835 - 1.015 * (words / sentences) - 84.6 * (syllables / words). 60-70 is plain
English; higher is easier. The syllable count is an estimate (vowel groups, a silent
final "e", "-ed"/"-es" endings), which is what readability checkers do too.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")
_SENTENCE_END = re.compile(r"[.!?]+(?=\s|$)|\n\s*\n")
_VOWEL_GROUPS = re.compile(r"[aeiouy]+")
# Suffixes counted on their own, so a silent "e" before them stays silent: "use-ful", "state-ment".
_SUFFIXES = ("ful", "ly", "ment", "ness", "less")


def count_syllables(word: str) -> int:
    word = word.lower().split("'")[0]
    if not word:
        return 0
    if len(word) <= 3:
        return 1
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return count_syllables(word[: -len(suffix)]) + 1
    count = len(_VOWEL_GROUPS.findall(word))
    if word.endswith("e") and not word.endswith(("le", "ee", "ye")):
        count -= 1  # silent final e: "home", "phone"
    elif word.endswith(("ed", "es")) and not word.endswith(
        ("ted", "ded", "ses", "zes", "ces", "ges")
    ):
        count -= 1  # "called", "homes"
    return max(count, 1)


def words_in(text: str) -> list[str]:
    return _WORD.findall(text)


def count_sentences(text: str) -> int:
    pieces = [piece for piece in _SENTENCE_END.split(text) if words_in(piece)]
    return max(len(pieces), 1)


def flesch_reading_ease(text: str) -> float:
    words = words_in(text)
    if not words:
        return 0.0
    syllables = sum(count_syllables(word) for word in words)
    return 206.835 - 1.015 * (len(words) / count_sentences(text)) - 84.6 * (syllables / len(words))
