"""Constrained decoding for Hugging Face ``generate``: only SIDs that exist in the catalog can be emitted.

A generative recommender (TIGER, al_sid) spells a SID as one token per level, a distinct token for each
(level, code): al_sid's vocabulary holds ``C{code + offset}`` with ``offset = level * codebook_size``, so the SID
12-7-300 of a 3 x 8192 model is ``C12 C8199 C16684``. :class:`TokenLayout` maps (level, code) to token ids and back;
:func:`constrained_prefix_fn` returns the ``prefix_allowed_tokens_fn`` that restricts each step to the codes a
:class:`~sidx_client.SidTrie` allows after the SID tokens generated so far.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from .trie import SidTrie


class TokenLayout:
    """Token ids of SID codes: ``tokens[level][code]`` is the token that spells ``code`` at ``level``."""

    def __init__(self, tokens: Sequence[Sequence[int]]) -> None:
        if not tokens:
            raise ValueError("a token layout needs at least one level")
        self.tokens: List[List[int]] = [list(level) for level in tokens]
        self._inverse: Dict[int, Tuple[int, int]] = {}
        for level, ids in enumerate(self.tokens):
            for code, token in enumerate(ids):
                if token in self._inverse:
                    raise ValueError(f"token {token} spells two SID codes: {self._inverse[token]} and {(level, code)}")
                self._inverse[token] = (level, code)

    @classmethod
    def contiguous(cls, codebook_sizes: Sequence[int], first_token_id: int) -> "TokenLayout":
        """Levels laid out one after another from ``first_token_id``: token = first + sum(sizes before) + code."""
        tokens: List[List[int]] = []
        start = first_token_id
        for size in codebook_sizes:
            tokens.append(list(range(start, start + size)))
            start += size
        return cls(tokens)

    @classmethod
    def from_vocab(cls, vocab: Mapping[str, int], codebook_sizes: Sequence[int], pattern: str = "C{}",
                   token_offset: Optional[int] = None) -> "TokenLayout":
        """From a tokenizer vocabulary (``tokenizer.get_vocab()``) holding ``C{code + offset}`` tokens: offset = the
        sum of the previous levels' codebook sizes, or with ``token_offset`` level x ``token_offset`` (al_sid's AL-GR
        vocabulary: 8192, whatever the codebook sizes; ``sidx eval-beams`` reads that form, ``--token-offset`` sets
        it). ``KeyError`` names a missing token."""
        tokens: List[List[int]] = []
        offset = 0
        for size in codebook_sizes:
            if token_offset is not None:
                offset = len(tokens) * token_offset
            level = []
            for code in range(size):
                name = pattern.format(code + offset)
                if name not in vocab:
                    raise KeyError(f"token {name!r} (level {len(tokens)}, code {code}) is not in the vocabulary")
                level.append(vocab[name])
            tokens.append(level)
            offset += size
        return cls(tokens)

    @property
    def levels(self) -> int:
        return len(self.tokens)

    def token(self, level: int, code: int) -> int:
        return self.tokens[level][code]

    def decode(self, token: int) -> Optional[Tuple[int, int]]:
        """(level, code) of a SID token; None for any other token."""
        return self._inverse.get(token)

    def sid_tokens(self, sid: Sequence[int]) -> List[int]:
        """The tokens that spell a SID."""
        return [self.tokens[level][code] for level, code in enumerate(sid)]

    def sid_of(self, tokens: Sequence[int]) -> Optional[Tuple[int, ...]]:
        """The SID spelled by the first SID tokens of ``tokens`` (levels in order), or None when they do not spell one."""
        codes: List[int] = []
        for token in tokens:
            decoded = self._inverse.get(int(token))
            if decoded is None:
                continue
            level, code = decoded
            if level != len(codes):
                return None
            codes.append(code)
            if len(codes) == self.levels:
                return tuple(codes)
        return None


def _as_ints(value: Any) -> List[int]:
    if hasattr(value, "tolist"):  # torch / numpy tensors
        value = value.tolist()
    return [int(v) for v in value]


def constrained_prefix_fn(
    trie: SidTrie,
    token_layout: TokenLayout,
    *,
    prompt_length: Optional[int] = None,
    eos_token_id: Union[int, Sequence[int], None] = None,
) -> Callable[[int, Any], List[int]]:
    """The ``prefix_allowed_tokens_fn(batch_id, input_ids) -> allowed token ids`` of Hugging Face ``generate``.

    At each step it reads the SID generated so far and allows exactly the tokens of the codes the trie lets follow
    it, so every beam ends on an occupied SID. Once a SID is complete it allows ``eos_token_id`` (when given),
    else the first level again (a model that emits several SIDs); so does a sequence that left the SID grammar
    (a finished beam padded after its end token). It never returns an empty list. The allowed lists are cached
    per prefix: build a new function after the trie changes.

    ``prompt_length``: how many leading tokens of ``input_ids`` are not generated: the prompt length for a
    decoder-only model, 1 (the decoder start token) for an encoder-decoder model such as TIGER's T5. Without it
    the SID being generated is the trailing run of SID tokens at levels 0, 1, ...; give it when the prompt itself
    may end with SID tokens (a history of SIDs), or the prompt's last SID is taken for the generated one.
    """
    if token_layout.levels != trie.levels:
        raise ValueError(f"token layout has {token_layout.levels} levels; the trie has {trie.levels}")
    if len(trie) == 0:
        raise ValueError("the SID trie is empty: no SID can be generated")
    eos: List[int] = [] if eos_token_id is None else (
        [int(eos_token_id)] if isinstance(eos_token_id, int) else [int(t) for t in eos_token_id])
    levels = trie.levels
    roots = [token_layout.token(0, code) for code in trie.next_codes(())]
    # Never an empty list: recent transformers refuse one ("the constraint is unsatisfiable").
    fallback = eos or roots
    cache: Dict[Tuple[int, ...], List[int]] = {(): roots}

    def codes_under_way(ids: List[int]) -> Optional[List[int]]:
        """The codes of the SID being generated (all of them once complete); None off the SID grammar."""
        if prompt_length is not None:
            codes: List[int] = []
            for i, token in enumerate(ids[prompt_length:]):
                decoded = token_layout.decode(token)
                if decoded is None or decoded[0] != i % levels:
                    return None
                codes.append(decoded[1])
            if not codes:
                return []
            return codes[(len(codes) - 1) // levels * levels:]
        if not ids:
            return []
        last = token_layout.decode(ids[-1])
        if last is None:
            return []  # no SID token yet: a SID starts
        n = last[0] + 1
        if n > len(ids):
            return None
        tail = [token_layout.decode(t) for t in ids[len(ids) - n:]]
        if any(d is None or d[0] != level for level, d in enumerate(tail)):
            return None
        return [d[1] for d in tail if d is not None]

    def allowed(batch_id: int, input_ids: Any) -> List[int]:
        codes = codes_under_way(_as_ints(input_ids))
        if codes is None:
            return fallback
        prefix = tuple(codes)
        if len(prefix) == levels:
            return fallback
        hit = cache.get(prefix)
        if hit is None:
            hit = [token_layout.token(len(prefix), code) for code in trie.next_codes(prefix)]
            if not hit:
                return fallback
            cache[prefix] = hit
        return hit

    return allowed
