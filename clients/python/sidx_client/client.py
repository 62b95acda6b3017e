"""``SidxClient``: every route of the sidx HTTP API (v1), over urllib, with retries on 429 and 503."""
from __future__ import annotations

import email.utils
import http.client
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from .embeddings import Embedding, wire_embedding, wire_embeddings
from .errors import UnreachableError, error_for
from .trie import SidTrie, TrieUpdate, parse_next_binary, parse_trie_binary, parse_trie_json
from .types import (
    DeleteResponse, EncodeResponse, ItemResponse, Job, ModelsResponse, Model, Readiness, RetrieveResponse,
    SidsNextResponse, UpsertResponse,
)

Items = Union[Mapping[str, Embedding], Iterable[Tuple[str, Embedding]]]


class Response:
    """A raw HTTP answer: status, headers (names lower-cased), body bytes."""

    def __init__(self, status: int, headers: Iterable[Tuple[str, str]], body: bytes) -> None:
        self.status = status
        self.headers: Dict[str, str] = {name.lower(): value for name, value in headers}
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8")) if self.body else None


def parse_retry_after(value: Optional[str], now: Optional[float] = None) -> Optional[float]:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date; None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:  # pragma: no cover - older Pythons return None instead of raising
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class SidxClient:
    """A client of one sidx server.

    ``api_key`` is sent as ``Authorization: Bearer <key>`` (keys come from ``sidx keys create``; the server has no
    HTTP route that makes them). Answers 429 and 503 (rate limited, overloaded, starting or stopping: the server did
    nothing) are retried up to ``max_retries`` times, waiting the server's ``Retry-After`` (capped at ``max_wait``
    seconds) or, without one, ``backoff * 2**attempt``. Any other error answer raises a :class:`~sidx_client.SidxError`
    subclass carrying the server's ``code`` and ``field``; no answer at all (refused, unknown host, reset, timeout)
    raises :class:`~sidx_client.UnreachableError` (``SIDX_ERR_UNREACHABLE``, a ``SidxError`` and an ``OSError``).
    """

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8080",
        api_key: Optional[str] = None,
        *,
        timeout: float = 30.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        max_wait: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_wait = max_wait
        self._sleep = sleep

    # ---- transport -------------------------------------------------------------------------------------------

    def _send(self, method: str, path: str, query: Optional[Mapping[str, Any]], body: Optional[bytes],
              headers: Mapping[str, str]) -> Response:
        url = self.base_url + path
        params = {k: v for k, v in (query or {}).items() if v is not None}
        if params:
            url += "?" + urllib.parse.urlencode(params)
        req = urllib.request.Request(url, data=body, method=method)
        req.add_header("accept", "application/json")
        if body is not None:
            req.add_header("content-type", "application/json")
        if self.api_key is not None:
            req.add_header("authorization", f"Bearer {self.api_key}")
        for name, value in headers.items():
            req.add_header(name, value)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as res:
                return Response(res.status, res.headers.items(), res.read())
        except urllib.error.HTTPError as err:  # every status >= 300 (304 included)
            with err:
                return Response(err.code, err.headers.items(), err.read())
        except (OSError, http.client.HTTPException) as err:  # URLError, timeouts, resets, a garbled answer
            reason = err.reason if isinstance(err, urllib.error.URLError) else err
            raise UnreachableError(url, reason or type(err).__name__) from err

    def request(self, method: str, path: str, *, query: Optional[Mapping[str, Any]] = None, json_body: Any = None,
                headers: Optional[Mapping[str, str]] = None, ok: Sequence[int] = ()) -> Response:
        """One API call with the retry policy; raises for an error status unless it is listed in ``ok``."""
        body = None if json_body is None else json.dumps(json_body, separators=(",", ":"), allow_nan=False).encode()
        attempt = 0
        while True:
            res = self._send(method, path, query, body, headers or {})
            if res.status < 400 or res.status in ok:
                return res
            retry_after = parse_retry_after(res.headers.get("retry-after"))
            if res.status in (429, 503) and attempt < self.max_retries:
                wait = retry_after if retry_after is not None else self.backoff * (2 ** attempt)
                self._sleep(min(wait, self.max_wait))
                attempt += 1
                continue
            try:
                err_body = res.json()
            except ValueError:
                err_body = None
            raise error_for(res.status, err_body if isinstance(err_body, dict) else {}, retry_after)

    def _call(self, method: str, path: str, json_body: Any = None, query: Optional[Mapping[str, Any]] = None) -> Any:
        return self.request(method, path, query=query, json_body=json_body).json()

    # ---- ops -------------------------------------------------------------------------------------------------

    def health(self) -> Dict[str, str]:
        """``GET /healthz``: the process answers."""
        return self._call("GET", "/healthz")  # type: ignore[no-any-return]

    def ready(self) -> Readiness:
        """``GET /readyz`` without retries: the readiness body, ``status`` "ready" or "not ready"."""
        res = self._send("GET", "/readyz", None, None, {})
        body = res.json()
        if res.status not in (200, 503) or not isinstance(body, dict) or "status" not in body:
            raise error_for(res.status, body if isinstance(body, dict) else {}, None)
        return body  # type: ignore[return-value]

    def wait_ready(self, timeout: float = 60.0, interval: float = 0.2) -> Readiness:
        """Polls ``/readyz`` until ready; ``TimeoutError`` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                body = self.ready()
                if body["status"] == "ready":
                    return body
            except UnreachableError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.base_url} not ready after {timeout} s")
            self._sleep(interval)

    # ---- encode and retrieve ---------------------------------------------------------------------------------

    def encode(self, embeddings: Any, model: Optional[str] = None) -> EncodeResponse:
        """``POST /v1/encode``: SIDs of embeddings (a 2-d numpy array or a sequence of embeddings); writes nothing."""
        body: Dict[str, Any] = {"embeddings": wire_embeddings(embeddings)}
        if model is not None:
            body["model"] = model
        return self._call("POST", "/v1/encode", body)  # type: ignore[no-any-return]

    def retrieve(
        self,
        embedding: Optional[Embedding] = None,
        sids: Optional[Sequence[Sequence[int]]] = None,
        *,
        k: Optional[int] = None,
        expand: Optional[str] = None,
        beam_width: Optional[int] = None,
        rerank: Optional[bool] = None,
        max_candidates: Optional[int] = None,
    ) -> RetrieveResponse:
        """``POST /v1/retrieve`` by a query embedding and/or an ordered beam of generated SIDs (best first).

        ``expand``: "none" | "hamming1" | "auto" | "beam" (server default: "beam" for an embedding on a model with
        beam.onnx, else "auto"). With only ``sids`` the beam order is kept and ``score`` is None.
        """
        body = retrieve_body({"embedding": embedding, "sids": sids, "k": k, "expand": expand, "beam_width": beam_width,
                              "rerank": rerank, "max_candidates": max_candidates})
        return self._call("POST", "/v1/retrieve", body)  # type: ignore[no-any-return]

    def retrieve_batch(self, queries: Sequence[Mapping[str, Any]]) -> List[RetrieveResponse]:
        """``POST /v1/retrieve/batch``: many queries in one request, e.g. a generator's beams for a batch of users.

        Each query is a mapping of ``retrieve``'s arguments (``embedding``, ``sids``, ``k``, ``expand``,
        ``beam_width``, ``rerank``, ``max_candidates``); the answers come back in the order of the queries, each as
        ``retrieve`` would answer it. A bad query raises for the whole batch, its field named ``queries[i].field``.
        """
        bodies = [retrieve_body(query, f"queries[{i}].embedding") for i, query in enumerate(queries)]
        return self._call("POST", "/v1/retrieve/batch", {"queries": bodies})["results"]  # type: ignore[no-any-return]

    # ---- items -----------------------------------------------------------------------------------------------

    def upsert(self, items: Items) -> UpsertResponse:
        """``POST /v1/items``: insert or replace a batch (one transaction, at most ``limits.maxBatch``).

        ``items``: ``{id: embedding}`` or ``[(id, embedding), ...]``. The answer holds each item's assigned SID.
        """
        pairs = items.items() if isinstance(items, Mapping) else items
        wire = [{"id": item_id, "embedding": wire_embedding(emb, f"items[{i}].embedding")}
                for i, (item_id, emb) in enumerate(pairs)]
        return self._call("POST", "/v1/items", {"items": wire})  # type: ignore[no-any-return]

    def delete(self, ids: Sequence[str]) -> DeleteResponse:
        """``POST /v1/items/delete``: ``{deleted, missing}``."""
        return self._call("POST", "/v1/items/delete", {"ids": list(ids)})  # type: ignore[no-any-return]

    def get_item(self, item_id: str) -> ItemResponse:
        """``GET /v1/items/{id}``: ``{id, sid, model}``; :class:`~sidx_client.NotFoundError` when absent."""
        return self._call("GET", "/v1/items/" + urllib.parse.quote(item_id, safe=""))  # type: ignore[no-any-return]

    # ---- SIDs: what may follow a prefix ----------------------------------------------------------------------

    def sids_next(self, prefixes: Sequence[Sequence[int]], model: Optional[str] = None,
                  binary: bool = False) -> SidsNextResponse:
        """``POST /v1/sids/next``: for each prefix, the codes that follow it in occupied SIDs (ascending) and how
        many items lie under each. ``binary=True`` asks for the compact ``SIDN`` answer (much faster for short
        prefixes) and parses it into the same structure; its ``model`` is then the one asked for (None: served)."""
        body: Dict[str, Any] = {"prefixes": [[int(c) for c in p] for p in prefixes]}
        if model is not None:
            body["model"] = model
        if not binary:
            return self._call("POST", "/v1/sids/next", body)  # type: ignore[no-any-return]
        res = self.request("POST", "/v1/sids/next", json_body=body, headers={"accept": "application/octet-stream"})
        return parse_next_binary(res.body, model)

    def sids_trie(self, model: Optional[str] = None, since: Optional[int] = None,
                  if_none_match: Optional[str] = None, format: str = "binary") -> Optional[TrieUpdate]:
        """``GET /v1/sids/trie``: the occupied SIDs (full snapshot), or with ``since`` what changed after that seq
        (the server may still answer a snapshot). None when ``if_none_match`` is the current ETag (304)."""
        if format not in ("binary", "json"):
            raise ValueError(f"format must be binary or json, got {format!r}")
        query = {"model": model, "format": format, "since": None if since is None else str(since)}
        headers = {"if-none-match": if_none_match} if if_none_match is not None else {}
        res = self.request("GET", "/v1/sids/trie", query=query, headers=headers, ok=(304,))
        if res.status == 304:
            return None
        etag = res.headers.get("etag")
        if format == "json":
            return parse_trie_json(res.json(), etag)
        return parse_trie_binary(res.body, model, etag)

    def trie(self, model: Optional[str] = None) -> SidTrie:
        """The full :class:`SidTrie` of ``model`` (default: the served one); keep it current with ``refresh``."""
        return SidTrie.fetch(self, model)

    # ---- models, re-index, jobs ------------------------------------------------------------------------------

    def models(self, status: Optional[str] = None) -> ModelsResponse:
        """``GET /v1/models``: registered models and the active one (``status`` filters)."""
        return self._call("GET", "/v1/models", query={"status": status})  # type: ignore[no-any-return]

    def register_model(self, path: str) -> Model:
        """``POST /v1/models``: register the bundle at ``path`` (relative to the server's ``model.registryDir``)."""
        return self._call("POST", "/v1/models", {"path": path})  # type: ignore[no-any-return]

    def activate_model(self, model_id: str) -> Model:
        """``POST /v1/models/{id}/activate``: only on an empty catalog (:class:`ConflictError` otherwise)."""
        return self._call("POST", f"/v1/models/{urllib.parse.quote(model_id, safe='')}/activate")  # type: ignore[no-any-return]

    def reindex(self, model: str, *, batch_size: Optional[int] = None, max_items_per_second: Optional[int] = None,
                mapping: Optional[bool] = None) -> Job:
        """``POST /v1/reindex``: move the catalog to ``model`` in the background; returns the job (202)."""
        body: Dict[str, Any] = {"model": model}
        for name, value in (("batchSize", batch_size), ("maxItemsPerSecond", max_items_per_second), ("mapping", mapping)):
            if value is not None:
                body[name] = value
        return self._call("POST", "/v1/reindex", body)  # type: ignore[no-any-return]

    def job(self, job_id: str) -> Job:
        """``GET /v1/jobs/{id}``."""
        return self._call("GET", "/v1/jobs/" + urllib.parse.quote(job_id, safe=""))  # type: ignore[no-any-return]

    def cancel_job(self, job_id: str) -> Job:
        """``POST /v1/jobs/{id}/cancel``: before the swap only (:class:`ConflictError` after)."""
        return self._call("POST", f"/v1/jobs/{urllib.parse.quote(job_id, safe='')}/cancel")  # type: ignore[no-any-return]

    def wait_job(self, job_id: str, timeout: Optional[float] = None, interval: float = 0.5) -> Job:
        """Polls a job until succeeded, failed or cancelled; ``TimeoutError`` after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if job["status"] in ("succeeded", "failed", "cancelled"):
                return job
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job['status']} ({job['phase']}) after {timeout} s")
            self._sleep(interval)


RETRIEVE_FIELDS = (("k", "k"), ("expand", "expand"), ("beam_width", "beamWidth"), ("rerank", "rerank"),
                   ("max_candidates", "maxCandidates"))


def retrieve_body(query: Mapping[str, Any], field: str = "embedding") -> Dict[str, Any]:
    """The JSON body of one retrieve query from ``retrieve``'s arguments (None: left out); ``field`` names the
    embedding in a ValueError (NaN, wrong shape). An unknown argument is a TypeError."""
    unknown = set(query) - {"embedding", "sids", *(name for name, _ in RETRIEVE_FIELDS)}
    if unknown:
        raise TypeError(f"unknown retrieve arguments: {', '.join(sorted(unknown))}")
    body: Dict[str, Any] = {}
    if query.get("embedding") is not None:
        body["embedding"] = wire_embedding(query["embedding"], field)
    if query.get("sids") is not None:
        body["sids"] = [[int(c) for c in sid] for sid in query["sids"]]
    for name, wire in RETRIEVE_FIELDS:
        if query.get(name) is not None:
            body[wire] = query[name]
    return body
