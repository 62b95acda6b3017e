"""No HTTP answer at all raises the client's ``UnreachableError`` (a ``SidxError``), not urllib's bare ``URLError``.

Real loopback sockets: one bound but not listening (connection refused), one listening that never answers."""
from __future__ import annotations

import socket
import unittest
import urllib.error
from typing import List

from sidx_client import SidxClient, SidxError, UnreachableError


class UnreachableTest(unittest.TestCase):
    def test_connection_refused_is_a_sidx_error_naming_the_url(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))  # held, never listening: a connect is refused and no one else takes the port
            url = f"http://127.0.0.1:{sock.getsockname()[1]}"
            sleeps: List[float] = []
            client = SidxClient(url, sleep=sleeps.append)
            with self.assertRaises(SidxError) as ctx:
                client.encode([[0.5, 0.25]])
        err = ctx.exception
        self.assertIsInstance(err, UnreachableError)
        self.assertEqual((err.status, err.code, err.field), (0, "SIDX_ERR_UNREACHABLE", None))
        self.assertEqual(err.url, f"{url}/v1/encode")
        self.assertIn(f"cannot reach {url}/v1/encode", err.message)
        self.assertEqual(str(err), f"SIDX_ERR_UNREACHABLE: {err.message}")
        self.assertIsInstance(err.__cause__, urllib.error.URLError)
        self.assertIsInstance(err.__cause__.reason, ConnectionRefusedError)  # type: ignore[union-attr]
        self.assertIsInstance(err, OSError, "code that caught OSError before still does")
        self.assertEqual(sleeps, [], "not retried")

    def test_no_answer_within_the_timeout_is_unreachable_too(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            sock.listen(1)  # the connection completes in the backlog; nothing ever reads or answers
            url = f"http://127.0.0.1:{sock.getsockname()[1]}"
            with self.assertRaises(UnreachableError) as ctx:
                SidxClient(url, timeout=0.2).health()
        self.assertEqual(ctx.exception.code, "SIDX_ERR_UNREACHABLE")
        self.assertIn(url, ctx.exception.message)
        self.assertIsInstance(ctx.exception.__cause__, (TimeoutError, socket.timeout))

    def test_wait_ready_polls_through_refusals_until_its_timeout(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            client = SidxClient(f"http://127.0.0.1:{sock.getsockname()[1]}", sleep=lambda s: None)
            with self.assertRaises(TimeoutError) as ctx:  # not the UnreachableError of each poll
                client.wait_ready(timeout=0.0)
        self.assertIn("not ready after", str(ctx.exception))


if __name__ == "__main__":
    unittest.main()
