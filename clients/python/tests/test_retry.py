"""Retries on 429/503 honouring Retry-After, and error mapping, against a scripted loopback server.

The client's sleep is recorded instead of slept: the tests count attempts and waits, never time."""
from __future__ import annotations

import email.utils
import json
import unittest
from typing import List

from sidx_client import (
    BadRequestError, RateLimitedError, ServerError, SidxClient, UnavailableError, parse_retry_after,
)
from tests.scripted_server import ScriptedServer, error_answer, json_answer, sequence

ENCODED = json_answer(200, {"model": "m", "sids": [[1, 2, 3]]})


class RetryTest(unittest.TestCase):
    def client(self, url: str, **kw: object) -> "tuple[SidxClient, List[float]]":
        sleeps: List[float] = []
        return SidxClient(url, sleep=sleeps.append, **kw), sleeps  # type: ignore[arg-type]

    def test_503_then_429_then_200_waits_what_the_server_says(self) -> None:
        with ScriptedServer(sequence(
            error_answer(503, "SIDX_ERR_OVERLOADED", headers={"retry-after": "2"}),
            error_answer(429, "SIDX_ERR_RATE_LIMITED", headers={"retry-after": "1"}),
            ENCODED,
        )) as server:
            client, sleeps = self.client(server.url)
            self.assertEqual(client.encode([[0.5, 0.25]])["sids"], [[1, 2, 3]])
        self.assertEqual(len(server.requests), 3)
        self.assertEqual(sleeps, [2.0, 1.0])
        bodies = {r.body for r in server.requests}
        self.assertEqual(len(bodies), 1)  # the same request each time
        self.assertEqual(json.loads(bodies.pop()), {"embeddings": [[0.5, 0.25]]})

    def test_exponential_backoff_without_retry_after_and_cap(self) -> None:
        with ScriptedServer(sequence(
            error_answer(503, "SIDX_ERR_NOT_READY"), error_answer(503, "SIDX_ERR_NOT_READY"),
            error_answer(429, "SIDX_ERR_RATE_LIMITED", headers={"retry-after": "3600"}), ENCODED,
        )) as server:
            client, sleeps = self.client(server.url, backoff=0.25, max_wait=5.0)
            client.encode([[1.0]])
        self.assertEqual(sleeps, [0.25, 0.5, 5.0])

    def test_gives_up_after_max_retries_with_the_servers_code(self) -> None:
        with ScriptedServer(sequence(error_answer(503, "SIDX_ERR_OVERLOADED", "encoder queue full",
                                                  headers={"retry-after": "1"}))) as server:
            client, sleeps = self.client(server.url, max_retries=2)
            with self.assertRaises(UnavailableError) as ctx:
                client.retrieve(sids=[[1, 2, 3]])
        self.assertEqual(len(server.requests), 3)
        self.assertEqual(sleeps, [1.0, 1.0])
        err = ctx.exception
        self.assertEqual((err.status, err.code, err.message, err.retry_after), (503, "SIDX_ERR_OVERLOADED", "encoder queue full", 1.0))

    def test_rate_limit_error_without_retries(self) -> None:
        with ScriptedServer(sequence(error_answer(429, "SIDX_ERR_RATE_LIMITED", headers={"retry-after": "7"}))) as server:
            client, sleeps = self.client(server.url, max_retries=0)
            with self.assertRaises(RateLimitedError) as ctx:
                client.get_item("a")
        self.assertEqual((len(server.requests), sleeps, ctx.exception.retry_after), (1, [], 7.0))

    def test_client_errors_are_not_retried_and_name_the_field(self) -> None:
        with ScriptedServer(sequence(error_answer(400, "SIDX_ERR_DIMENSION", "expected 512 values",
                                                  field="items[0].embedding"))) as server:
            client, sleeps = self.client(server.url)
            with self.assertRaises(BadRequestError) as ctx:
                client.upsert({"a": [1.0]})
        self.assertEqual(len(server.requests), 1)
        self.assertEqual(sleeps, [])
        self.assertEqual((ctx.exception.code, ctx.exception.field), ("SIDX_ERR_DIMENSION", "items[0].embedding"))
        self.assertIn("items[0].embedding", str(ctx.exception))

    def test_an_error_without_a_json_body(self) -> None:
        with ScriptedServer(sequence((502, {"content-type": "text/html"}, b"<html>bad gateway</html>"))) as server:
            client, _ = self.client(server.url)
            with self.assertRaises(ServerError) as ctx:
                client.health()
        self.assertEqual((ctx.exception.status, ctx.exception.code, ctx.exception.field), (502, "HTTP_502", None))

    def test_api_key_is_sent_as_bearer(self) -> None:
        with ScriptedServer(sequence(json_answer(200, {"status": "ok"}))) as server:
            SidxClient(server.url, api_key="sidx_k1").health()
            SidxClient(server.url).health()
        self.assertEqual(server.requests[0].headers.get("authorization"), "Bearer sidx_k1")
        self.assertNotIn("authorization", server.requests[1].headers)

    def test_retry_after_forms(self) -> None:
        now = 1_800_000_000.0
        self.assertEqual(parse_retry_after("12"), 12.0)
        self.assertEqual(parse_retry_after(email.utils.formatdate(now + 30, usegmt=True), now=now), 30.0)
        self.assertEqual(parse_retry_after(email.utils.formatdate(now - 30, usegmt=True), now=now), 0.0)
        self.assertIsNone(parse_retry_after("soon"))
        self.assertIsNone(parse_retry_after(None))


if __name__ == "__main__":
    unittest.main()
