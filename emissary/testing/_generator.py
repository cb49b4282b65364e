"""The emulator's toy language model: deterministic text of an exact length.

The same request always gives the same text; each generation setting (and the prompt, the
project and the deployment) changes it. The text has exactly ``max_new_tokens``
whitespace-separated words and never repeats an n-gram of ``no_repeat_ngram_size`` words.
"""

from __future__ import annotations

import hashlib
import random

import msgspec

from ..models import GetCompletionsFromDeploymentRequestBody as RequestBody

DEFAULT_MAX_NEW_TOKENS = 16
"""Words generated when a request does not set ``max_new_tokens``."""
MAX_NEW_TOKENS_LIMIT = 4096
"""The emulator refuses (400) requests for more words than this."""
VOCABULARY_SIZE = 512

_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"
_SYLLABLES = [c + v for c in _CONSONANTS for v in _VOWELS]


def word(index: int) -> str:
    """The index-th word of an endless vocabulary of distinct pronounceable words."""
    base = len(_SYLLABLES)
    parts = [_SYLLABLES[index % base]]
    index //= base
    parts.append(_SYLLABLES[index % base])
    index //= base
    while index:
        parts.append(_SYLLABLES[index % base])
        index //= base
    return "".join(parts)


def generate_completion(project_id: str, deployment_id: str, body: RequestBody) -> str:
    """The deterministic completion for a request."""
    length = body.max_new_tokens or DEFAULT_MAX_NEW_TOKENS
    n = body.no_repeat_ngram_size or 0
    seed = hashlib.sha256(
        msgspec.json.encode([project_id, deployment_id, body]), usedforsecurity=False
    ).digest()
    rng = random.Random(seed)
    vocabulary = VOCABULARY_SIZE if not body.top_k else min(body.top_k, VOCABULARY_SIZE)
    words: list[int] = []
    seen: set[tuple[int, ...]] = set()
    for position in range(length):
        start = rng.randrange(vocabulary)
        choice = None
        for step in range(vocabulary):
            candidate = (start + step) % vocabulary
            if n == 0 or not _repeats(words, candidate, n, seen):
                choice = candidate
                break
        if choice is None:  # every vocabulary word would repeat an n-gram: use a fresh one
            choice = VOCABULARY_SIZE + position
        words.append(choice)
        if n and len(words) >= n:
            seen.add(tuple(words[-n:]))
    return " ".join(word(i) for i in words)


def _repeats(words: list[int], candidate: int, n: int, seen: set[tuple[int, ...]]) -> bool:
    if len(words) < n - 1:
        return False
    gram = (*words[len(words) - (n - 1) :], candidate) if n > 1 else (candidate,)
    return gram in seen
