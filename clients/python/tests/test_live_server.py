"""Every client method against a real ``sidx serve`` (node bin/sidx.js) started here on a loopback port, with
auth.mode=writes, a rate limit, API keys made by ``sidx keys create``, and the scientific text embeddings."""
from __future__ import annotations

import random
import unittest
from array import array
from typing import ClassVar, Dict, List, Tuple

from sidx_client import (
    AuthenticationError, BadRequestError, ConflictError, NotFoundError, PermissionDeniedError, RateLimitedError,
    SidTrie, SidxClient, TokenLayout, constrained_prefix_fn,
)
from tests.support import REPO_ROOT, ServeProcess, catalog_embeddings, node_available

try:
    import numpy  # type: ignore[import-not-found, unused-ignore]  # optional: the client sends numpy arrays as base64 when it is there
except ImportError:  # pragma: no cover - depends on the machine
    numpy = None  # type: ignore[assignment]

ITEMS = 300
RATE_MAX = 400  # requests per key per window: the rate-limit test spends the read key's, nothing else comes near


def route_missing(err: NotFoundError) -> bool:
    return err.code == "SIDX_ERR_ROUTE_NOT_FOUND"


class LiveServerTest(unittest.TestCase):
    server: ClassVar[ServeProcess]
    client: ClassVar[SidxClient]
    read_key: ClassVar[str]
    catalog: ClassVar[Dict[str, "array[float]"]]
    sids: ClassVar[Dict[str, Tuple[int, ...]]]

    @classmethod
    def setUpClass(cls) -> None:
        if not node_available():
            raise unittest.SkipTest("node or bin/sidx.js not found: the live server tests need the repository")
        cls.server = ServeProcess(env={
            "SIDX__AUTH__MODE": "writes",
            "SIDX__RATE_LIMIT__MAX": str(RATE_MAX),
            "SIDX__RATE_LIMIT__WINDOW_MS": "3600000",
        })
        try:
            admin_key = cls.server.sidx("keys", "create", "--name", "py-admin", "--scope", "admin").strip()
            cls.read_key = cls.server.sidx("keys", "create", "--name", "py-read", "--scope", "read").strip()
            url = cls.server.start()
            cls.client = SidxClient(url, api_key=admin_key)
            cls.client.wait_ready(timeout=120)
            cls.catalog = catalog_embeddings(ITEMS)
            res = cls.client.upsert(cls.catalog)
            cls.sids = {item["id"]: tuple(item["sid"]) for item in res["items"]}
        except BaseException:
            cls.server.stop()
            raise

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.stop()

    def test_health_and_readiness(self) -> None:
        self.assertEqual(self.client.health(), {"status": "ok"})
        ready = self.client.ready()
        self.assertEqual((ready["status"], ready["model"]), ("ready", "default-rqvae-3x256"))
        self.assertGreaterEqual(ready["items"], ITEMS)

    def test_encode_lists_arrays_and_numpy_give_the_upserted_sids(self) -> None:
        ids = list(self.catalog)[:5]
        expected = [list(self.sids[i]) for i in ids]
        as_arrays = self.client.encode([self.catalog[i] for i in ids])  # array('f'): base64
        as_lists = self.client.encode([list(self.catalog[i]) for i in ids])  # JSON numbers
        self.assertEqual(as_arrays["sids"], expected)
        self.assertEqual(as_lists["sids"], expected)
        self.assertEqual(as_arrays["model"], "default-rqvae-3x256")
        if numpy is None:
            return
        matrix = numpy.array([self.catalog[i] for i in ids], dtype=numpy.float64)  # cast to <f4 on the wire
        self.assertEqual(self.client.encode(matrix)["sids"], expected)
        self.assertEqual(self.client.encode([row for row in matrix])["sids"], expected)

    def test_retrieve_by_embedding_finds_the_item_itself(self) -> None:
        some = list(self.catalog)[:20]
        hits = 0
        for item_id in some:
            res = self.client.retrieve(self.catalog[item_id], k=10)
            self.assertEqual(res["expand"], "beam")
            self.assertLessEqual(len(res["items"]), 10)
            self.assertTrue(all(isinstance(it["score"], float) for it in res["items"]))
            hits += any(it["id"] == item_id for it in res["items"])
        self.assertGreaterEqual(hits, 18)

    def test_retrieve_by_a_beam_of_sids_keeps_beam_order(self) -> None:
        distinct = sorted(set(self.sids.values()))
        first, second = distinct[-1], distinct[0]  # beam order is not SID order
        res = self.client.retrieve(sids=[first, second], k=50, expand="none")
        got = [tuple(it["sid"]) for it in res["items"]]
        count = {s: sum(1 for v in self.sids.values() if v == s) for s in (first, second)}
        self.assertEqual(got, [first] * count[first] + [second] * count[second])
        self.assertTrue(all(it["score"] is None and it["match"] == "exact" for it in res["items"]))
        self.assertEqual(res["querySids"], [list(first), list(second)])

    def test_retrieve_batch_answers_each_query_as_retrieve_does(self) -> None:
        distinct = sorted(set(self.sids.values()))
        queries = [{"embedding": self.catalog[item_id], "k": 10} for item_id in list(self.catalog)[20:24]]
        queries.append({"sids": [distinct[-1], distinct[0]], "k": 20, "expand": "none"})
        results = self.client.retrieve_batch(queries)
        self.assertEqual(len(results), len(queries))
        for query, got in zip(queries, results):
            want = self.client.retrieve(**query)
            del got["timingsMs"], want["timingsMs"]  # type: ignore[misc]
            self.assertEqual(got, want)
        with self.assertRaises(BadRequestError) as ctx:
            self.client.retrieve_batch([queries[0], {"sids": [[1, 2, 3]], "k": 0}])
        self.assertEqual((ctx.exception.code, ctx.exception.field), ("SIDX_ERR_INVALID_INPUT", "queries[1].k"))
        with self.assertRaises(ValueError):  # caught before sending, named by its query
            self.client.retrieve_batch([{"embedding": [float("nan")] * 512}])
        with self.assertRaises(TypeError):  # a misspelt argument is not sent
            self.client.retrieve_batch([{"sids": [[1, 2, 3]], "beamwidth": 4}])

    def test_items_upsert_replace_get_delete(self) -> None:
        item_id = "py/item with spaces?&"  # quoted into the path
        emb = self.catalog[list(self.catalog)[0]]
        first = self.client.upsert([(item_id, emb)])
        self.assertFalse(first["items"][0]["replaced"])
        again = self.client.upsert({item_id: list(emb)})
        self.assertTrue(again["items"][0]["replaced"])
        self.assertGreater(int(again["seq"]), int(first["seq"]))
        got = self.client.get_item(item_id)
        self.assertEqual((got["id"], got["sid"]), (item_id, first["items"][0]["sid"]))
        self.assertEqual(self.client.delete([item_id, "py-never-there"]), {"deleted": 1, "missing": ["py-never-there"]})
        with self.assertRaises(NotFoundError) as ctx:
            self.client.get_item(item_id)
        self.assertEqual((ctx.exception.status, ctx.exception.code), (404, "SIDX_ERR_NOT_FOUND"))

    def test_bad_input_raises_with_code_and_field_and_writes_nothing(self) -> None:
        with self.assertRaises(BadRequestError) as ctx:
            self.client.upsert([("py-ok", self.catalog[list(self.catalog)[0]]), ("py-short", [0.5] * 7)])
        self.assertEqual((ctx.exception.status, ctx.exception.code, ctx.exception.field),
                         (400, "SIDX_ERR_DIMENSION", "items[1].embedding"))
        with self.assertRaises(NotFoundError):
            self.client.get_item("py-ok")  # the batch was refused whole
        with self.assertRaises(BadRequestError) as ctx:
            self.client.retrieve(sids=[[1, 2, 3]], k=0)
        self.assertEqual((ctx.exception.code, ctx.exception.field), ("SIDX_ERR_INVALID_INPUT", "k"))
        with self.assertRaises(BadRequestError) as ctx:
            self.client.encode(["not base64!"])
        self.assertEqual((ctx.exception.code, ctx.exception.field), ("SIDX_ERR_BASE64", "embeddings[0]"))
        with self.assertRaises(ValueError):  # caught before sending: JSON has no NaN
            self.client.encode([[float("nan")] * 512])

    def test_api_keys_scopes(self) -> None:
        anonymous = SidxClient(self.client.base_url)
        reader = SidxClient(self.client.base_url, api_key=self.read_key)
        emb = self.catalog[list(self.catalog)[0]]
        self.assertEqual(anonymous.encode([emb])["sids"], reader.encode([emb])["sids"])  # reads stay open
        with self.assertRaises(AuthenticationError) as no_key:
            anonymous.upsert({"py-x": emb})
        with self.assertRaises(PermissionDeniedError) as weak:
            reader.upsert({"py-x": emb})
        with self.assertRaises(PermissionDeniedError) as wrong:
            SidxClient(self.client.base_url, api_key="sidx_not_a_key").get_item("py-x")
        self.assertEqual((no_key.exception.status, no_key.exception.code, no_key.exception.field),
                         (401, "SIDX_ERR_UNAUTHENTICATED", "authorization"))
        self.assertEqual((weak.exception.status, weak.exception.code), (403, "SIDX_ERR_FORBIDDEN"))
        self.assertEqual(wrong.exception.code, "SIDX_ERR_FORBIDDEN")
        with self.assertRaises(AuthenticationError):
            anonymous.models()

    def test_rate_limit_is_retried_then_raised_with_retry_after(self) -> None:
        sleeps: List[float] = []
        reader = SidxClient(self.client.base_url, api_key=self.read_key, max_retries=2, max_wait=1.0,
                            sleep=sleeps.append)
        for n in range(RATE_MAX + 1):
            try:
                reader.retrieve(sids=[[0, 0, 0]], k=1, expand="none")
            except RateLimitedError as err:
                self.assertEqual((err.status, err.code), (429, "SIDX_ERR_RATE_LIMITED"))
                self.assertIsNotNone(err.retry_after)
                self.assertGreater(err.retry_after or 0, 0)
                break
        else:
            self.fail(f"no 429 after {RATE_MAX + 1} requests")
        self.assertGreaterEqual(n, RATE_MAX - 30)  # the other tests spent a few of this key's requests at most
        self.assertEqual(sleeps, [1.0, 1.0])  # two retries, each waiting Retry-After capped at max_wait

    def test_models_register_reindex_jobs(self) -> None:
        models = self.client.models()
        self.assertEqual(models["active"], "default-rqvae-3x256")
        with self.assertRaises(BadRequestError) as unknown_path:  # the path as seen from the repository root
            self.client.register_model("models/rqkmeans-3x256")
        self.assertEqual((unknown_path.exception.code, unknown_path.exception.field), ("SIDX_ERR_INVALID_INPUT", "path"))
        self.assertIn(str(REPO_ROOT / "models"), unknown_path.exception.message)  # the server's model.registryDir
        self.assertIn('did you mean "rqkmeans-3x256"?', unknown_path.exception.message)
        registered = self.client.register_model("rqkmeans-3x256")
        self.assertEqual((registered["levels"], registered["codebookSizes"]), (3, [256, 256, 256]))
        self.assertIn(registered["id"], [m["id"] for m in self.client.models(status="registered")["models"]])
        with self.assertRaises(ConflictError) as ctx:
            self.client.activate_model(registered["id"])  # the catalog is not empty
        self.assertEqual(ctx.exception.code, "SIDX_ERR_CONFLICT")
        with self.assertRaises(BadRequestError) as bad:
            self.client.reindex(registered["id"], batch_size=0)
        self.assertEqual(bad.exception.field, "batchSize")
        with self.assertRaises(BadRequestError) as unknown_model:
            self.client.reindex("default")
        self.assertEqual((unknown_model.exception.code, unknown_model.exception.field), ("SIDX_ERR_UNKNOWN_MODEL", "model"))
        self.assertIn("registered: default-rqvae-3x256", unknown_model.exception.message)
        for target in (registered["id"], "default-rqvae-3x256"):  # there and back: the other tests see the default
            job = self.client.reindex(target, batch_size=100)
            self.assertEqual(job["model"], target)
            done = self.client.wait_job(job["id"], timeout=300, interval=0.2)
            self.assertEqual((done["status"], done["phase"]), ("succeeded", "done"), done)
            self.assertEqual(done["processed"], done["total"], done)  # its final count, not 0
            self.assertGreater(done["itemsPerSecond"] or 0, 0, done)  # the encode phase's rate
            self.assertEqual(self.client.models()["active"], target)
            with self.assertRaises(ConflictError):
                self.client.cancel_job(job["id"])  # finished
        self.assertEqual(self.client.get_item(list(self.sids)[0])["sid"], list(self.sids[list(self.sids)[0]]))
        with self.assertRaises(NotFoundError) as missing:
            self.client.job("no-such-job")
        self.assertEqual(missing.exception.code, "SIDX_ERR_JOB_NOT_FOUND")

    def catalog_trie(self) -> SidTrie:
        return SidTrie(3, self.sids.values())

    def test_sids_next_counts_items_under_each_code(self) -> None:
        first = next(iter(self.sids.values()))
        try:
            res = self.client.sids_next([[], [first[0]], list(first[:2])])
        except NotFoundError as err:
            if route_missing(err):
                self.skipTest("this server has no POST /v1/sids/next yet (404)")
            raise
        trie = self.catalog_trie()
        self.assertEqual((res["model"], res["levels"]), ("default-rqvae-3x256", 3))
        for entry, prefix in zip(res["next"], [(), first[:1], first[:2]]):
            self.assertEqual(entry["codes"], trie.next_codes(prefix))
            want = [sum(1 for s in self.sids.values() if s[:len(prefix) + 1] == (*prefix, c)) for c in entry["codes"]]
            self.assertEqual(entry["counts"], want)
        for binary in (False, True):
            with self.assertRaises(BadRequestError) as ctx:
                self.client.sids_next([[0], [0, 0, 0, 0]], binary=binary)
            self.assertEqual(ctx.exception.code, "SIDX_ERR_INVALID_INPUT")
            self.assertEqual(ctx.exception.field, "prefixes[1]")

    def test_sids_next_binary_answer_equals_the_json_answer(self) -> None:
        sids = list(self.sids.values())
        prefixes = [[], *[list(s[:n]) for s in sids[:20] for n in (1, 2, 3)], [], [255, 255, 255]]
        try:
            binary = self.client.sids_next(prefixes, binary=True)
        except NotFoundError as err:
            if route_missing(err):
                self.skipTest("this server has no POST /v1/sids/next yet (404)")
            raise
        as_json = self.client.sids_next(prefixes)
        self.assertEqual(binary["model"], None)
        self.assertEqual((binary["levels"], binary["next"]), (as_json["levels"], as_json["next"]))
        self.assertEqual(binary["next"][-1], {"codes": [], "counts": []})
        self.assertEqual(sum(binary["next"][0]["counts"]), len(sids))
        named = self.client.sids_next([[]], model=as_json["model"], binary=True)
        self.assertEqual((named["model"], named["next"]), (as_json["model"], as_json["next"][:1]))

    def test_sids_trie_snapshot_304_and_refresh(self) -> None:
        try:
            trie = self.client.trie()
        except NotFoundError as err:
            if route_missing(err):
                self.skipTest("this server has no GET /v1/sids/trie yet (404)")
            raise
        self.assertEqual(set(trie), set(self.sids.values()))
        self.assertIsNotNone(trie.etag)
        as_json = self.client.sids_trie(format="json")
        assert as_json is not None
        self.assertEqual((as_json.kind, sorted(as_json.added), as_json.seq), ("full", sorted(trie), trie.seq))
        self.assertFalse(trie.refresh(self.client))  # 304
        # a new item at a SID nobody holds: pick a far-away embedding until the encoder gives a new SID
        rng = random.Random(11)
        for attempt in range(50):
            emb = [rng.gauss(0, 1) for _ in range(512)]
            sid = tuple(self.client.encode([emb])["sids"][0])
            if sid not in trie:
                break
        else:
            self.skipTest("no unoccupied SID found in 50 random embeddings")
        self.client.upsert({"py-trie-new": emb})
        try:
            self.assertTrue(trie.refresh(self.client))
            self.assertIn(sid, trie)
        finally:
            self.client.delete(["py-trie-new"])
        self.assertTrue(trie.refresh(self.client))
        self.assertNotIn(sid, trie)
        self.assertEqual(set(trie), set(self.sids.values()))

    def test_constrained_decoding_on_the_catalog_trie_resolves_every_sid(self) -> None:
        trie = self.catalog_trie()
        try:
            served = self.client.trie()
            self.assertEqual(set(served), set(trie))
            trie = served
        except NotFoundError as err:
            if not route_missing(err):
                raise
        vocab = {f"C{n}": 1000 + n for n in range(3 * 256)}
        vocab["</s>"] = 1
        layout = TokenLayout.from_vocab(vocab, [256, 256, 256])
        fn = constrained_prefix_fn(trie, layout, prompt_length=1, eos_token_id=1)
        rng = random.Random(5)
        beams: List[Tuple[int, ...]] = []
        for _ in range(40):  # a random-scoring "model" decoding one SID per prompt, constrained
            ids = [0]
            for _level in range(3):
                ids.append(max(fn(0, ids), key=lambda t: rng.random()))
            self.assertEqual(fn(0, ids), [1])
            sid = layout.sid_of(ids[1:])
            assert sid is not None
            beams.append(sid)
        self.assertTrue(all(sid in trie for sid in beams))
        res = self.client.retrieve(sids=beams, k=1000, expand="none")
        self.assertEqual({tuple(it["sid"]) for it in res["items"]}, set(beams))  # every SID holds items
        unconstrained = [tuple(rng.randrange(256) for _ in range(3)) for _ in range(40)]
        res = self.client.retrieve(sids=unconstrained, k=1000, expand="none")
        self.assertLess(len({tuple(it["sid"]) for it in res["items"]}), 5)


if __name__ == "__main__":
    unittest.main()
