"""sids_next, sids_trie and SidTrie.refresh against a loopback server that follows the CONTRACT of
/v1/sids/next and /v1/sids/trie (ETag "<modelVersion>.<seq>", If-None-Match -> 304, since -> delta or a full
snapshot). The same client methods run against the real server in test_live_server.py once it has the routes."""
from __future__ import annotations

import json
import unittest
import urllib.parse
from typing import Dict, List, Set, Tuple

from sidx_client import BadRequestError, ModelChangedError, SidTrie, SidxClient
from tests.scripted_server import Answer, Request, ScriptedServer, error_answer, json_answer
from tests.test_trie import trie_bytes

Sid = Tuple[int, ...]


class ContractServer:
    """The sids routes of one 2-level model (version 3) over a SID set that changes with a sequence number."""

    def __init__(self, sids: Set[Sid], seq: int) -> None:
        self.states: Dict[int, Set[Sid]] = {seq: set(sids)}
        self.seq = seq
        self.keep_history = True
        self.version = 3  # a re-index swap gives the served model another version
        self.answered: List[str] = []  # "304", "full", "delta"

    def change(self, add: Set[Sid], remove: Set[Sid], seq: int) -> None:
        self.states[seq] = (self.states[self.seq] | add) - remove
        self.seq = seq

    def respond(self, req: Request) -> Answer:
        url = urllib.parse.urlsplit(req.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        current = self.states[self.seq]
        if url.path == "/v1/sids/next":
            body = json.loads(req.body)
            out = []
            for i, prefix in enumerate(body["prefixes"]):
                if len(prefix) >= 2:
                    return error_answer(400, "SIDX_ERR_INVALID_INPUT", "too long", field=f"prefixes[{i}]")
                codes = sorted({s[len(prefix)] for s in current if list(s[:len(prefix)]) == prefix})
                counts = [sum(1 for s in current if list(s[:len(prefix)]) == prefix and s[len(prefix)] == c) for c in codes]
                out.append({"codes": codes, "counts": counts})
            return json_answer(200, {"model": "m", "levels": 2, "next": out})
        etag = f'"{self.version}.{self.seq}"'
        if req.headers.get("if-none-match") == etag:
            self.answered.append("304")
            return 304, {"etag": etag}, b""
        since = int(query["since"]) if "since" in query else None
        delta = since is not None and self.keep_history and since in self.states
        self.answered.append("delta" if delta else "full")
        added = sorted(current - self.states[since]) if delta else sorted(current)  # type: ignore[index]
        removed = sorted(self.states[since] - current) if delta else []  # type: ignore[index]
        if query.get("format") == "json":
            body = {"model": "m", "levels": 2, "seq": str(self.seq)}
            if delta:
                body.update(kind="delta", since=str(since), added=added, removed=removed)
            else:
                body.update(kind="full", sids=added)
            return json_answer(200, body, {"etag": etag})
        data = trie_bytes(2, 2, 1 if delta else 0, self.seq, since if delta else 0, added, removed)  # type: ignore[arg-type]
        return 200, {"etag": etag, "content-type": "application/octet-stream"}, data


class SidsContractTest(unittest.TestCase):
    def setUp(self) -> None:
        self.state = ContractServer({(0, 1), (0, 2), (3, 4)}, seq=5)
        self.server = ScriptedServer(self.state.respond).__enter__()
        self.addCleanup(self.server.__exit__)
        self.client = SidxClient(self.server.url)

    def test_refresh_304_then_delta_then_full_snapshot(self) -> None:
        trie = self.client.trie(model="m")
        self.assertEqual((list(trie), trie.seq, trie.etag, trie.model), ([(0, 1), (0, 2), (3, 4)], 5, '"3.5"', "m"))

        self.assertFalse(trie.refresh(self.client))
        last = self.server.requests[-1]
        self.assertEqual(last.headers.get("if-none-match"), '"3.5"')
        self.assertEqual(dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(last.path).query)),
                         {"model": "m", "format": "binary", "since": "5"})

        self.state.change(add={(0, 3), (7, 7)}, remove={(0, 1)}, seq=9)
        self.assertTrue(trie.refresh(self.client))
        self.assertEqual(list(trie), [(0, 2), (0, 3), (3, 4), (7, 7)])
        self.assertEqual((trie.seq, trie.etag), (9, '"3.9"'))

        self.state.keep_history = False  # the server answers a full snapshot to a since it no longer holds
        self.state.change(add={(1, 1)}, remove={(3, 4), (7, 7)}, seq=12)
        self.assertTrue(trie.refresh(self.client))
        self.assertEqual(list(trie), [(0, 2), (0, 3), (1, 1)])
        self.assertEqual(self.state.answered, ["full", "304", "delta", "full"])
        self.assertIn((1, 1), trie)
        self.assertEqual(trie.next_codes([0]), [2, 3])

    def test_refresh_empty_delta_is_no_change_and_a_model_swap_raises(self) -> None:
        trie = self.client.trie()
        self.state.change(add=set(), remove=set(), seq=6)  # a write that left every SID occupied (a replace in place)
        self.assertFalse(trie.refresh(self.client), "an empty delta changes no SID")
        self.assertEqual((trie.seq, trie.etag), (6, '"3.6"'))

        self.state.version = 4  # a re-index swapped the served model: other SIDs under the same route
        self.state.keep_history = False
        self.state.change(add={(5, 5)}, remove={(0, 1), (0, 2), (3, 4)}, seq=20)
        with self.assertRaises(ModelChangedError) as caught:
            trie.refresh(self.client)
        self.assertEqual((caught.exception.code, caught.exception.was, caught.exception.now), ("SIDX_ERR_MODEL_CHANGED", "3", "4"))
        self.assertEqual((list(trie), trie.seq), ([(0, 1), (0, 2), (3, 4)], 6), "nothing applied")
        self.assertEqual(list(SidTrie.fetch(self.client)), [(5, 5)], "fetching knowingly gets the new model's SIDs")

    def test_json_format_equals_binary(self) -> None:
        binary = self.client.sids_trie()
        as_json = self.client.sids_trie(format="json")
        assert binary is not None and as_json is not None
        self.assertEqual((binary.kind, binary.seq, binary.added, binary.etag),
                         (as_json.kind, as_json.seq, as_json.added, as_json.etag))
        self.state.change(add={(9, 9)}, remove=set(), seq=6)
        delta = self.client.sids_trie(since=5, format="json")
        assert delta is not None
        self.assertEqual((delta.kind, delta.since, delta.added, delta.removed), ("delta", 5, [(9, 9)], []))
        self.assertIsNone(self.client.sids_trie(if_none_match='"3.6"'))

    def test_sids_next(self) -> None:
        res = self.client.sids_next([[], [0], [5]])
        self.assertEqual(res["next"], [{"codes": [0, 3], "counts": [2, 1]}, {"codes": [1, 2], "counts": [1, 1]},
                                       {"codes": [], "counts": []}])
        with self.assertRaises(BadRequestError) as ctx:
            self.client.sids_next([[0], [0, 1]])
        self.assertEqual((ctx.exception.code, ctx.exception.field), ("SIDX_ERR_INVALID_INPUT", "prefixes[1]"))


if __name__ == "__main__":
    unittest.main()
