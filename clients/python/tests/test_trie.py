"""The /v1/sids/trie wire formats (on bytes built here, field by field from the contract) and SidTrie."""
from __future__ import annotations

import struct
import unittest
from typing import List, Sequence, Tuple

from sidx_client import SidTrie, TrieFormatError, TrieUpdate, parse_next_binary, parse_trie_binary, parse_trie_json


def trie_bytes(levels: int, code_bytes: int, kind: int, seq: int, since: int,
               added: Sequence[Sequence[int]], removed: Sequence[Sequence[int]] = ()) -> bytes:
    """The contract's layout, written out offset by offset."""
    out = bytearray(b"SIDT")                             # 0: magic
    out += bytes([1, levels, code_bytes, kind])          # 4: version, 5: levels, 6: code bytes, 7: kind
    out += seq.to_bytes(8, "little")                     # 8: u64 seq
    out += since.to_bytes(8, "little")                   # 16: u64 since
    out += len(added).to_bytes(4, "little")              # 24: u32 added
    out += len(removed).to_bytes(4, "little")            # 28: u32 removed
    assert len(out) == 32
    for sid in [*added, *removed]:
        assert len(sid) == levels
        for code in sid:
            out += code.to_bytes(code_bytes, "little")
    return bytes(out)


def next_bytes(levels: int, code_bytes: int, entries: Sequence[Tuple[Sequence[int], Sequence[int]]]) -> bytes:
    """The ``SIDN`` layout of ``POST /v1/sids/next``, written out field by field."""
    out = bytearray(b"SIDN")                             # 0: magic
    out += bytes([1, levels, code_bytes, 0])             # 4: version, 5: levels, 6: code bytes, 7: reserved
    out += len(entries).to_bytes(4, "little")            # 8: u32 prefixes
    for codes, counts in entries:
        out += len(codes).to_bytes(4, "little")          # u32 m
        for code in codes:
            out += code.to_bytes(code_bytes, "little")   # m codes
        for count in counts:
            out += count.to_bytes(4, "little")           # m u32 counts, unpadded
    return bytes(out)


class NextBinaryFormatTest(unittest.TestCase):
    def test_2_and_4_byte_codes_give_the_json_shape(self) -> None:
        entries = [([0, 3, 65535], [40, 2, 1]), ([], []), ([7], [5])]
        want = [{"codes": list(c), "counts": list(n)} for c, n in entries]
        res = parse_next_binary(next_bytes(3, 2, entries), model="m")
        self.assertEqual(res, {"model": "m", "levels": 3, "next": want})
        wide = [([70000, 2**31], [1, 2**32 - 1])]
        res = parse_next_binary(next_bytes(2, 4, wide))
        self.assertEqual(res, {"model": None, "levels": 2, "next": [{"codes": [70000, 2**31], "counts": [1, 2**32 - 1]}]})
        self.assertEqual(parse_next_binary(next_bytes(1, 2, []))["next"], [])

    def test_malformed_answers_are_refused_with_the_reason(self) -> None:
        good = next_bytes(3, 2, [([1, 2], [3, 4])])
        cases = {
            "shorter than": good[:11],
            "not b'SIDN'": b"SIDT" + good[4:],
            "version 2": good[:4] + b"\x02" + good[5:],
            "width 3": good[:6] + b"\x03" + good[7:],
            "truncated at prefix 0": good[:-1],
            "after its last prefix": good + b"\x00",
        }
        for reason, data in cases.items():
            with self.subTest(reason), self.assertRaisesRegex(TrieFormatError, reason):
                parse_next_binary(data)


class BinaryFormatTest(unittest.TestCase):
    def test_full_snapshot_with_2_byte_codes(self) -> None:
        sids: List[Tuple[int, ...]] = [(0, 5, 255), (0, 5, 256), (3, 0, 65535)]
        update = parse_trie_binary(trie_bytes(3, 2, 0, 42, 0, sids), model="m", etag='"1.42"')
        self.assertEqual(update, TrieUpdate("full", 3, 42, 0, sids, [], "m", '"1.42"'))

    def test_delta_with_4_byte_codes_and_64_bit_seq(self) -> None:
        seq = 2**40 + 7  # beyond 32 bits: the u64 is read whole
        added = [(1, 70000), (2, 3)]
        removed = [(1, 69999)]
        update = parse_trie_binary(trie_bytes(2, 4, 1, seq, seq - 5, added, removed))
        self.assertEqual((update.kind, update.levels, update.seq, update.since), ("delta", 2, seq, seq - 5))
        self.assertEqual(update.added, added)
        self.assertEqual(update.removed, removed)

    def test_empty_snapshot(self) -> None:
        update = parse_trie_binary(trie_bytes(4, 2, 0, 0, 0, []))
        self.assertEqual((update.kind, update.levels, update.added, update.removed), ("full", 4, [], []))

    def test_malformed_answers_are_refused_with_the_reason(self) -> None:
        good = trie_bytes(2, 2, 1, 9, 3, [(1, 2)], [(3, 4)])
        cases = {
            "shorter than": good[:31],
            "not b'SIDT'": b"SIDX" + good[4:],
            "version 2": good[:4] + b"\x02" + good[5:],
            "0 levels": good[:5] + b"\x00" + good[6:],
            "width 3": good[:6] + b"\x03" + good[7:],
            "kind 2": good[:7] + b"\x02" + good[8:],
            "39 bytes; its header announces 40": good[:-1],
            "header announces": good + b"\x00\x00",
            "removed SIDs or a since": trie_bytes(2, 2, 0, 9, 3, [(1, 2)]),
        }
        for reason, data in cases.items():
            with self.subTest(reason), self.assertRaises(TrieFormatError) as ctx:
                parse_trie_binary(data)
            self.assertIn(reason, str(ctx.exception))


class JsonFormatTest(unittest.TestCase):
    def test_full_and_delta(self) -> None:
        full = parse_trie_json({"model": "m", "levels": 2, "seq": "18446744073709551615", "kind": "full",
                                "sids": [[0, 1], [2, 3]]}, etag='"1.5"')
        self.assertEqual(full, TrieUpdate("full", 2, 2**64 - 1, 0, [(0, 1), (2, 3)], [], "m", '"1.5"'))
        delta = parse_trie_json({"model": "m", "levels": 2, "seq": "7", "since": "5", "kind": "delta",
                                 "added": [[4, 4]], "removed": [[0, 1]]})
        self.assertEqual((delta.kind, delta.seq, delta.since, delta.added, delta.removed),
                         ("delta", 7, 5, [(4, 4)], [(0, 1)]))

    def test_malformed(self) -> None:
        for body in ({"levels": 2, "seq": "1", "kind": "full", "sids": [[1]]},
                     {"levels": 2, "seq": "x", "kind": "full", "sids": []},
                     {"levels": 2, "seq": "1", "kind": "other"},
                     {"levels": 0, "seq": "1", "kind": "full", "sids": []}):
            with self.subTest(body=body), self.assertRaises(TrieFormatError):
                parse_trie_json(body)


class SidTrieTest(unittest.TestCase):
    def make(self) -> SidTrie:
        return SidTrie(3, [(1, 2, 3), (1, 2, 4), (1, 9, 0), (5, 0, 0)], model="m", seq=10)

    def test_queries(self) -> None:
        trie = self.make()
        self.assertEqual(len(trie), 4)
        self.assertEqual(trie.next_codes(()), [1, 5])
        self.assertEqual(trie.next_codes([1]), [2, 9])
        self.assertEqual(trie.next_codes((1, 2)), [3, 4])
        self.assertEqual(trie.next_codes((1, 3)), [])
        self.assertEqual(trie.next_codes((1, 2, 3)), [])  # a full SID has no continuation
        self.assertIn((1, 2, 4), trie)
        self.assertIn([1, 2, 4], trie)
        self.assertNotIn((1, 2), trie)  # a prefix is not a SID
        self.assertNotIn((1, 2, 5), trie)
        self.assertTrue(trie.has_prefix((1, 9)))
        self.assertFalse(trie.has_prefix((2,)))
        self.assertEqual(list(trie), [(1, 2, 3), (1, 2, 4), (1, 9, 0), (5, 0, 0)])

    def test_add_and_discard_prune_empty_prefixes(self) -> None:
        trie = self.make()
        self.assertFalse(trie.add((1, 2, 3)))
        self.assertTrue(trie.discard((1, 9, 0)))
        self.assertFalse(trie.discard((1, 9, 0)))
        self.assertFalse(trie.discard((7, 7, 7)))
        self.assertEqual(trie.next_codes([1]), [2])  # 1-9 held only 1-9-0
        self.assertTrue(trie.discard((5, 0, 0)))
        self.assertEqual(trie.next_codes(()), [1])
        self.assertEqual(len(trie), 2)
        with self.assertRaises(ValueError):
            trie.add((1, 2))

    def test_apply_delta_then_snapshot(self) -> None:
        trie = self.make()
        trie.apply(TrieUpdate("delta", 3, 12, 10, added=[(5, 0, 1)], removed=[(1, 2, 3)], etag='"1.12"'))
        self.assertEqual(list(trie), [(1, 2, 4), (1, 9, 0), (5, 0, 0), (5, 0, 1)])
        self.assertEqual((trie.seq, trie.etag), (12, '"1.12"'))
        with self.assertRaises(ValueError):  # a delta from another seq would corrupt the copy
            trie.apply(TrieUpdate("delta", 3, 20, 11, added=[(0, 0, 0)]))
        self.assertNotIn((0, 0, 0), trie)
        trie.apply(TrieUpdate("full", 3, 30, 0, added=[(0, 0, 0)]))
        self.assertEqual(list(trie), [(0, 0, 0)])
        self.assertEqual(trie.seq, 30)

    def test_round_trip_through_the_binary_format(self) -> None:
        sids: List[Tuple[int, ...]] = [(i % 7, i % 11, i) for i in range(300)]
        trie = SidTrie.from_update(parse_trie_binary(trie_bytes(3, 2, 0, 1, 0, sorted(sids))))
        self.assertEqual(list(trie), sorted(tuple(s) for s in sids))
        with self.assertRaises(ValueError):
            SidTrie.from_update(parse_trie_binary(trie_bytes(3, 2, 1, 2, 1, [])))


if __name__ == "__main__":
    unittest.main()
