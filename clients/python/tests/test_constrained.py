"""TokenLayout and constrained_prefix_fn: the prefix_allowed_tokens_fn of Hugging Face generate, step by step."""
from __future__ import annotations

import random
import unittest
from typing import Callable, List, Sequence

from sidx_client import SidTrie, TokenLayout, constrained_prefix_fn

SIDS = [(0, 1, 2), (0, 1, 3), (0, 2, 0), (3, 3, 3)]
EOS = 1
SEP = 2  # any non-SID token, e.g. the end of a prompt


def al_sid_vocab(codebook: int, levels: int) -> dict:
    """A vocabulary like al_sid's: C{code + level * codebook} tokens at scattered ids among text tokens."""
    names = [f"C{n}" for n in range(codebook * levels)] + ["<pad>", "</s>", "hello"]
    ids = list(range(10, 10 + len(names)))
    random.Random(3).shuffle(ids)
    return dict(zip(names, ids))


class Tensorish:
    """Stands in for a torch.LongTensor row: the function reads it through tolist()."""

    def __init__(self, ids: Sequence[int]) -> None:
        self.ids = list(ids)

    def tolist(self) -> List[int]:
        return list(self.ids)


def greedy(step: Callable[[List[int]], List[int]], prompt: List[int], n: int, rng: random.Random) -> List[int]:
    """A stand-in language model: a random score per token, the best allowed token taken at each step."""
    ids = list(prompt)
    for _ in range(n):
        allowed = step(ids)
        ids.append(max(allowed, key=lambda t: rng.random()))
    return ids[len(prompt):]


class TokenLayoutTest(unittest.TestCase):
    def test_al_sid_vocabulary(self) -> None:
        vocab = al_sid_vocab(4, 3)
        layout = TokenLayout.from_vocab(vocab, [4, 4, 4])
        self.assertEqual(layout.levels, 3)
        self.assertEqual(layout.token(0, 3), vocab["C3"])
        self.assertEqual(layout.token(1, 2), vocab["C6"])   # 2 + 1 * 4
        self.assertEqual(layout.token(2, 0), vocab["C8"])   # 0 + 2 * 4
        self.assertEqual(layout.decode(vocab["C6"]), (1, 2))
        self.assertIsNone(layout.decode(vocab["hello"]))
        self.assertEqual(layout.sid_tokens((1, 2, 3)), [vocab["C1"], vocab["C6"], vocab["C11"]])
        self.assertEqual(layout.sid_of([vocab["hello"], vocab["C1"], vocab["C6"], vocab["C11"]]), (1, 2, 3))
        self.assertIsNone(layout.sid_of([vocab["C1"], vocab["C11"]]))
        with self.assertRaises(KeyError) as ctx:
            TokenLayout.from_vocab(vocab, [4, 4, 5])
        self.assertIn("C12", str(ctx.exception))

    def test_a_fixed_token_offset_per_level(self) -> None:
        # AL-GR's form (sidx eval-beams' default): C{code + level * 8192}, whatever the codebook sizes.
        names = [f"C{code + level * 8192}" for level in range(3) for code in range(4)]
        vocab = {name: 100 + i for i, name in enumerate(names)}
        layout = TokenLayout.from_vocab(vocab, [4, 4, 4], token_offset=8192)
        self.assertEqual(layout.sid_tokens((1, 2, 3)), [vocab["C1"], vocab["C8194"], vocab["C16387"]])
        with self.assertRaises(KeyError) as ctx:
            TokenLayout.from_vocab(vocab, [4, 4, 4])  # the cumulative default asks for C4, which this vocab lacks
        self.assertIn("C4", str(ctx.exception))

    def test_contiguous_and_duplicates(self) -> None:
        layout = TokenLayout.contiguous([2, 3], first_token_id=100)
        self.assertEqual(layout.tokens, [[100, 101], [102, 103, 104]])
        with self.assertRaises(ValueError):
            TokenLayout([[1, 2], [2, 3]])


class ConstrainedPrefixFnTest(unittest.TestCase):
    def setUp(self) -> None:
        self.trie = SidTrie(3, SIDS)
        self.layout = TokenLayout.contiguous([4, 4, 4], first_token_id=100)  # level l, code c -> 100 + 4l + c

    def test_each_step_allows_exactly_the_trie_continuations(self) -> None:
        fn = constrained_prefix_fn(self.trie, self.layout, eos_token_id=EOS)
        prompt = [SEP]
        self.assertEqual(fn(0, prompt), [100, 103])                       # level 0: codes 0 and 3
        self.assertEqual(fn(0, prompt + [100]), [105, 106])               # after 0: level-1 codes 1, 2
        self.assertEqual(fn(0, prompt + [100, 105]), [110, 111])          # after 0-1: level-2 codes 2, 3
        self.assertEqual(fn(0, prompt + [100, 106]), [108])               # after 0-2: code 0
        self.assertEqual(fn(0, prompt + [100, 105, 111]), [EOS])          # complete: end
        self.assertEqual(fn(3, Tensorish(prompt + [103, 107])), [111])    # a tensor row works the same

    def test_prompt_length_when_the_prompt_ends_with_a_sid(self) -> None:
        history = self.layout.sid_tokens((3, 3, 3))  # a decoder-only prompt: the user's last SID
        plain = constrained_prefix_fn(self.trie, self.layout, eos_token_id=EOS)
        self.assertEqual(plain(0, history), [EOS])  # without prompt_length the history's SID looks generated
        fn = constrained_prefix_fn(self.trie, self.layout, prompt_length=len(history), eos_token_id=[EOS, 0])
        self.assertEqual(fn(0, history), [100, 103])
        self.assertEqual(fn(0, history + [100]), [105, 106])
        self.assertEqual(fn(0, history + [100, 106, 108]), [EOS, 0])
        # several SIDs in a row without an end token: after a complete SID the first level starts again
        chain = constrained_prefix_fn(self.trie, self.layout, prompt_length=1)
        self.assertEqual(chain(0, [SEP, 100, 106, 108]), [100, 103])
        self.assertEqual(chain(0, [SEP, 100, 106, 108, 103]), [107])

    def test_never_an_empty_list(self) -> None:
        with_eos = constrained_prefix_fn(self.trie, self.layout, prompt_length=1, eos_token_id=EOS)
        without = constrained_prefix_fn(self.trie, self.layout, prompt_length=1)
        finished = [SEP, 103, 107, 111, EOS, 0, 0]   # a finished beam, padded: off the SID grammar
        forced = [SEP, 101]                            # code 1 at level 0 holds no SID
        for ids in (finished, forced):
            self.assertEqual(with_eos(0, ids), [EOS])
            self.assertEqual(without(0, ids), [100, 103])

    def test_refuses_a_layout_of_other_levels_and_an_empty_trie(self) -> None:
        with self.assertRaises(ValueError):
            constrained_prefix_fn(self.trie, TokenLayout.contiguous([4, 4], 100))
        with self.assertRaises(ValueError):
            constrained_prefix_fn(SidTrie(3), self.layout)

    def test_decoding_emits_only_occupied_sids(self) -> None:
        trie = SidTrie(3, [(a, b, c) for a in range(16) for b in range(16) for c in range(16) if (a * 7 + b * 3 + c) % 29 == 0])
        vocab = al_sid_vocab(16, 3)
        layout = TokenLayout.from_vocab(vocab, [16, 16, 16])
        fn = constrained_prefix_fn(trie, layout, eos_token_id=vocab["</s>"])
        prompt = [vocab["hello"]]
        rng = random.Random(0)
        constrained = [layout.sid_of(greedy(lambda ids: fn(0, ids), prompt, 3, rng)) for _ in range(200)]
        unconstrained = [layout.sid_of(greedy(lambda ids: layout.tokens[len(ids) - 1], prompt, 3, rng)) for _ in range(200)]
        self.assertTrue(all(sid is not None and sid in trie for sid in constrained))
        self.assertGreater(len(set(constrained)), 20)
        self.assertGreater(sum(1 for sid in unconstrained if sid not in trie), 150)  # the constraint is what does it


if __name__ == "__main__":
    unittest.main()
