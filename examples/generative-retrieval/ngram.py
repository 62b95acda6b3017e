"""A next-SID model small enough for the standard library: a smoothed n-gram from the last item's SID to the next
item's SID, one code at a time, and a token-level beam search that asks an HF-style ``prefix_allowed_tokens_fn``
which tokens each step may take (as ``generate(prefix_allowed_tokens_fn=...)`` does)."""
from __future__ import annotations

import heapq
import math
from collections import Counter, defaultdict
from typing import Callable, DefaultDict, Dict, List, Optional, Sequence, Tuple

from sidx_client import TokenLayout

Sid = Tuple[int, ...]
AllowedFn = Callable[[int, List[int]], List[int]]


class NextSidModel:
    """P(next SID | last item's SID) = prod over levels l of P(code_l | the ``order`` codes before it in this SID,
    context), each a Dirichlet-smoothed chain: context = the last SID -> its first code -> none -> uniform.

    Like a token-level language model it does not memorise whole SIDs (unless ``order`` = levels - 1), so free
    decoding can combine codes into SIDs that no item holds: what the trie constraint prevents."""

    def __init__(self, levels: int, codebook: int, order: int = 1, strength: float = 1.0) -> None:
        self.levels = levels
        self.codebook = codebook
        self.order = order
        self.strength = strength
        self.counts: DefaultDict[Tuple[Tuple[int, ...], int, Sid], Counter[int]] = defaultdict(Counter)

    def _key(self, ctx: Tuple[int, ...], prefix: Sid) -> Tuple[Tuple[int, ...], int, Sid]:
        return ctx, len(prefix), prefix[max(0, len(prefix) - self.order):] if self.order else ()

    @staticmethod
    def _contexts(prev: Sid) -> List[Tuple[int, ...]]:
        return [(), (-1, prev[0]), (-2, *prev)]  # coarse to fine; tagged so the keys never collide

    def observe(self, prev: Sid, nxt: Sid) -> None:
        for level in range(self.levels):
            for ctx in self._contexts(prev):
                self.counts[self._key(ctx, nxt[:level])][nxt[level]] += 1

    def log_probs(self, prev: Sid, prefix: Sid) -> Tuple[Dict[int, float], float]:
        """log P(code | prefix, prev) for every code seen after this prefix, and the log P of any other code."""
        seen: Dict[int, float] = {}
        floor = 1.0 / self.codebook
        probs: Dict[int, float] = {}
        for ctx in self._contexts(prev):
            table = self.counts.get(self._key(ctx, prefix))
            if not table:
                continue
            n = sum(table.values())
            a = self.strength
            codes = set(probs) | set(table)
            probs = {c: (table.get(c, 0) + a * probs.get(c, floor)) / (n + a) for c in codes}
            floor = a * floor / (n + a)
        for code, p in probs.items():
            seen[code] = math.log(p)
        return seen, math.log(floor)


def beam_search(model: NextSidModel, layout: TokenLayout, prev: Sid, prompt: List[int], width: int,
                allowed: Optional[AllowedFn]) -> List[Sid]:
    """The ``width`` most probable SIDs, level by level. ``allowed`` (a prefix_allowed_tokens_fn) restricts the
    tokens of each step; without it any code of the level may follow (unseen ones at the smoothing floor)."""
    beams: List[Tuple[float, Sid]] = [(0.0, ())]
    for level in range(model.levels):
        candidates: List[Tuple[float, Sid]] = []
        for score, prefix in beams:
            seen, floor = model.log_probs(prev, prefix)
            if allowed is None:
                unseen = (c for c in range(model.codebook) if c not in seen)
                codes: Sequence[int] = [*seen, *(next(unseen) for _ in range(min(width, model.codebook - len(seen))))]
            else:
                codes = []
                for token in allowed(0, prompt + layout.sid_tokens(prefix)):
                    decoded = layout.decode(token)
                    if decoded is not None and decoded[0] == level:
                        codes.append(decoded[1])
            candidates.extend((score + seen.get(c, floor), prefix + (c,)) for c in codes)
        beams = heapq.nlargest(width, candidates, key=lambda sc: (sc[0], [-c for c in sc[1]]))
    return [sid for _, sid in beams]
