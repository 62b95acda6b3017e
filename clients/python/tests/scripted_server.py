"""A loopback HTTP server whose answers a test scripts: for the client's retry policy and the sids contract."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Mapping, Tuple

Answer = Tuple[int, Mapping[str, str], bytes]


def json_answer(status: int, body: Any, headers: Mapping[str, str] = {}) -> Answer:
    return status, {"content-type": "application/json", **headers}, json.dumps(body).encode()


def error_answer(status: int, code: str, message: str = "refused", headers: Mapping[str, str] = {}, **extra: Any) -> Answer:
    return json_answer(status, {"statusCode": status, "code": code, "error": "x", "message": message, **extra}, headers)


class Request:
    def __init__(self, method: str, path: str, headers: Dict[str, str], body: bytes) -> None:
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body


class ScriptedServer:
    """Answers each request with ``respond(request)``; keeps every request in ``requests``."""

    def __init__(self, respond: Callable[[Request], Answer]) -> None:
        self.requests: List[Request] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def handle_one(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                req = Request(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                              self.rfile.read(length))
                outer.requests.append(req)
                status, headers, body = respond(req)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                if body:
                    self.wfile.write(body)

            do_GET = do_POST = handle_one

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def __enter__(self) -> "ScriptedServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def sequence(*answers: Answer) -> Callable[[Request], Answer]:
    """Answers in turn; the last one repeats."""
    queue = list(answers)

    def respond(_req: Request) -> Answer:
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return respond
