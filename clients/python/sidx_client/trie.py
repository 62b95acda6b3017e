"""The occupied-SID trie of ``GET /v1/sids/trie``: wire formats and a client-side copy kept current by deltas.

Binary format (little-endian): ``SIDT`` magic, u8 version (1), u8 levels, u8 code bytes (2 or 4), u8 kind
(0 full snapshot, 1 delta), u64 seq, u64 since (0 for a snapshot), u32 added, u32 removed, then the added SIDs
and the removed SIDs, ``levels`` codes each, sorted lexicographically.

The binary answer of ``POST /v1/sids/next`` (``Accept: application/octet-stream``) is parsed here too: ``SIDN``
magic, u8 version (1), u8 levels, u8 code bytes (2 or 4), u8 reserved, u32 prefixes, then per prefix u32 m, m codes,
m u32 counts; no padding.
"""
from __future__ import annotations

import struct
import sys
from array import array
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple

from .types import NextCodes, SidsNextResponse
from .errors import ModelChangedError

if TYPE_CHECKING:  # pragma: no cover
    from .client import SidxClient

Sid = Tuple[int, ...]

MAGIC = b"SIDT"
VERSION = 1
HEADER = struct.Struct("<4sBBBBQQII")  # 32 bytes
KIND_FULL = 0
KIND_DELTA = 1
NEXT_MAGIC = b"SIDN"
NEXT_HEADER = struct.Struct("<4sBBBBI")  # 12 bytes


class TrieFormatError(ValueError):
    """A trie answer that does not follow the format (truncated, wrong magic, unknown version or kind)."""


@dataclass(frozen=True)
class TrieUpdate:
    """One answer of ``/v1/sids/trie``: a full snapshot (``kind == "full"``) or a delta since ``since``."""

    kind: str
    levels: int
    seq: int
    since: int
    added: List[Sid]
    removed: List[Sid] = field(default_factory=list)
    model: Optional[str] = None
    etag: Optional[str] = None


def _codes(buf: bytes, offset: int, count: int, code_bytes: int) -> "array[int]":
    codes = array("H" if code_bytes == 2 else "I")
    if codes.itemsize != code_bytes:  # pragma: no cover - no mainstream platform has a 2-byte int
        codes = array("L" if code_bytes == 4 else "H")
    codes.frombytes(buf[offset:offset + count * code_bytes])
    if sys.byteorder == "big":  # pragma: no cover
        codes.byteswap()
    return codes


def _rows(codes: "array[int]", levels: int) -> List[Sid]:
    it = iter(codes)
    return list(zip(*([it] * levels)))


def parse_trie_binary(data: bytes, model: Optional[str] = None, etag: Optional[str] = None) -> TrieUpdate:
    """Decodes the binary trie format; raises :class:`TrieFormatError` on anything malformed."""
    if len(data) < HEADER.size:
        raise TrieFormatError(f"trie answer of {len(data)} bytes is shorter than its {HEADER.size}-byte header")
    magic, version, levels, code_bytes, kind, seq, since, n_added, n_removed = HEADER.unpack_from(data, 0)
    if magic != MAGIC:
        raise TrieFormatError(f"trie answer starts with {magic!r}, not {MAGIC!r}")
    if version != VERSION:
        raise TrieFormatError(f"trie format version {version} is not supported (this client reads {VERSION})")
    if levels < 1:
        raise TrieFormatError("trie answer has 0 levels")
    if code_bytes not in (2, 4):
        raise TrieFormatError(f"trie code width {code_bytes} bytes is not 2 or 4")
    if kind not in (KIND_FULL, KIND_DELTA):
        raise TrieFormatError(f"trie kind {kind} is not 0 (full) or 1 (delta)")
    if kind == KIND_FULL and (n_removed != 0 or since != 0):
        raise TrieFormatError("a full trie snapshot has removed SIDs or a since")
    expected = HEADER.size + (n_added + n_removed) * levels * code_bytes
    if len(data) != expected:
        raise TrieFormatError(f"trie answer has {len(data)} bytes; its header announces {expected}")
    added = _rows(_codes(data, HEADER.size, n_added * levels, code_bytes), levels)
    removed_at = HEADER.size + n_added * levels * code_bytes
    removed = _rows(_codes(data, removed_at, n_removed * levels, code_bytes), levels)
    return TrieUpdate("full" if kind == KIND_FULL else "delta", levels, seq, since, added, removed, model, etag)


def parse_next_binary(data: bytes, model: Optional[str] = None) -> SidsNextResponse:
    """Decodes the binary ``/v1/sids/next`` answer into the JSON answer's shape. The layout names no model: ``model``
    is the one asked for (None for the served model). Raises :class:`TrieFormatError` on anything malformed."""
    if len(data) < NEXT_HEADER.size:
        raise TrieFormatError(f"next answer of {len(data)} bytes is shorter than its {NEXT_HEADER.size}-byte header")
    magic, version, levels, code_bytes, _reserved, n = NEXT_HEADER.unpack_from(data, 0)
    if magic != NEXT_MAGIC:
        raise TrieFormatError(f"next answer starts with {magic!r}, not {NEXT_MAGIC!r}")
    if version != VERSION:
        raise TrieFormatError(f"next format version {version} is not supported (this client reads {VERSION})")
    if code_bytes not in (2, 4):
        raise TrieFormatError(f"next code width {code_bytes} bytes is not 2 or 4")
    entries: List[NextCodes] = []
    at = NEXT_HEADER.size
    for i in range(n):
        if at + 4 > len(data):
            raise TrieFormatError(f"next answer is truncated at prefix {i}")
        m = int.from_bytes(data[at:at + 4], "little")
        at += 4
        if at + m * (code_bytes + 4) > len(data):
            raise TrieFormatError(f"next answer is truncated at prefix {i}")
        codes = _codes(data, at, m, code_bytes).tolist()
        counts = _codes(data, at + m * code_bytes, m, 4).tolist()
        at += m * (code_bytes + 4)
        entries.append({"codes": codes, "counts": counts})
    if at != len(data):
        raise TrieFormatError(f"next answer has {len(data) - at} bytes after its last prefix")
    return {"model": model, "levels": levels, "next": entries}  # type: ignore[typeddict-item]


def _sid_list(value: Any, name: str, levels: int) -> List[Sid]:
    if not isinstance(value, list):
        raise TrieFormatError(f"trie JSON field {name} is not a list")
    out: List[Sid] = []
    for sid in value:
        if not isinstance(sid, list) or len(sid) != levels or not all(isinstance(c, int) and c >= 0 for c in sid):
            raise TrieFormatError(f"trie JSON field {name} holds {sid!r}, not a SID of {levels} codes")
        out.append(tuple(sid))
    return out


def parse_trie_json(body: Mapping[str, Any], etag: Optional[str] = None) -> TrieUpdate:
    """Decodes the JSON trie format (``format=json``)."""
    levels = body.get("levels")
    kind = body.get("kind")
    if not isinstance(levels, int) or levels < 1:
        raise TrieFormatError(f"trie JSON has levels {levels!r}")
    model = body.get("model")
    model = model if isinstance(model, str) else None
    try:
        seq = int(body["seq"])
        since = int(body.get("since", 0))
    except (KeyError, TypeError, ValueError) as err:
        raise TrieFormatError(f"trie JSON seq/since are not decimal integers: {err}") from None
    if kind == "full":
        return TrieUpdate("full", levels, seq, 0, _sid_list(body.get("sids"), "sids", levels), [], model, etag)
    if kind == "delta":
        added = _sid_list(body.get("added"), "added", levels)
        return TrieUpdate("delta", levels, seq, since, added, _sid_list(body.get("removed"), "removed", levels), model, etag)
    raise TrieFormatError(f"trie JSON kind {kind!r} is not full or delta")


def model_version(etag: Optional[str]) -> Optional[str]:
    """The model version an ETag of ``/v1/sids/trie`` names (``"<modelVersion>.<seq>"``), or None."""
    if not etag:
        return None
    tag = etag.strip()
    if tag.startswith("W/"):
        tag = tag[2:]
    head, dot, _ = tag.strip('"').partition(".")
    return head if dot and head else None


class SidTrie:
    """The set of occupied SIDs of one model, as a prefix tree: which codes may follow a prefix.

    Build it with :meth:`fetch` (or from SIDs you hold), keep it current with :meth:`refresh`, which asks the
    server only for what changed since :attr:`seq` (a 304 when nothing did).
    """

    def __init__(self, levels: int, sids: Iterable[Sequence[int]] = (), model: Optional[str] = None,
                 seq: int = 0, etag: Optional[str] = None) -> None:
        if levels < 1:
            raise ValueError("a SID trie needs at least one level")
        self.levels = levels
        self.model = model
        self.seq = seq
        self.etag = etag
        self.version = model_version(etag)
        self._root: Dict[int, Any] = {}
        self._size = 0
        for sid in sids:
            self.add(sid)

    @classmethod
    def from_update(cls, update: TrieUpdate) -> "SidTrie":
        if update.kind != "full":
            raise ValueError("a SID trie starts from a full snapshot, not a delta")
        return cls(update.levels, update.added, update.model, update.seq, update.etag)

    @classmethod
    def fetch(cls, client: "SidxClient", model: Optional[str] = None) -> "SidTrie":
        """Downloads the full trie of ``model`` (default: the served model)."""
        update = client.sids_trie(model=model)
        assert update is not None  # no If-None-Match sent: never a 304
        return cls.from_update(update)

    def _check(self, sid: Sequence[int]) -> None:
        if len(sid) != self.levels:
            raise ValueError(f"SID {list(sid)} has {len(sid)} codes; this trie has {self.levels} levels")

    def add(self, sid: Sequence[int]) -> bool:
        """Adds one SID; False when it was there already."""
        self._check(sid)
        node = self._root
        for code in sid[:-1]:
            node = node.setdefault(code, {})
        if sid[-1] in node:
            return False
        node[sid[-1]] = None
        self._size += 1
        return True

    def discard(self, sid: Sequence[int]) -> bool:
        """Removes one SID and the prefixes left empty; False when it was not there."""
        self._check(sid)
        path: List[Dict[int, Any]] = [self._root]  # path[d]: the node at depth d
        for code in sid[:-1]:
            child = path[-1].get(code)
            if child is None:
                return False
            path.append(child)
        if sid[-1] not in path[-1]:
            return False
        del path[-1][sid[-1]]
        self._size -= 1
        for depth in range(len(path) - 1, 0, -1):
            if path[depth]:
                break
            del path[depth - 1][sid[depth - 1]]
        return True

    def apply(self, update: TrieUpdate) -> None:
        """Applies an answer of ``/v1/sids/trie``: a snapshot replaces everything, a delta must start at ``seq``.

        Raises :class:`~sidx_client.ModelChangedError`, applying nothing, when the answer is of another model version
        than this trie's (the served model was swapped by a re-index).
        """
        version = model_version(update.etag)
        if self.version is not None and version is not None and version != self.version:
            raise ModelChangedError(self.version, version)
        if update.levels != self.levels:
            raise ValueError(f"update has {update.levels} levels; this trie has {self.levels}")
        if update.kind == "full":
            self._root = {}
            self._size = 0
        elif update.since != self.seq:
            raise ValueError(f"delta since seq {update.since} does not apply to a trie at seq {self.seq}")
        for sid in update.removed:
            self.discard(sid)
        for sid in update.added:
            self.add(sid)
        self.seq = update.seq
        self.etag = update.etag
        self.version = version if version is not None else self.version
        if update.model is not None:
            self.model = update.model

    def refresh(self, client: "SidxClient") -> bool:
        """Brings the trie up to date (``since`` + ``If-None-Match``); True when its SIDs may have changed (a full
        snapshot, or a delta that adds or removes some), False when they did not (a 304, an empty delta).

        The server may answer a full snapshot instead of a delta (it keeps a bounded history); both are applied.
        A delta that does not start at this trie's seq is refused and a full snapshot fetched instead. A trie of the
        served model raises :class:`~sidx_client.ModelChangedError` when a re-index swapped the served model.
        """
        update = client.sids_trie(model=self.model, since=self.seq, if_none_match=self.etag)
        if update is None:
            return False
        if update.kind == "delta" and update.since != self.seq:
            update = client.sids_trie(model=self.model)
            assert update is not None
        self.apply(update)
        return update.kind == "full" or bool(update.added) or bool(update.removed)

    def _node(self, prefix: Sequence[int]) -> Optional[Dict[int, Any]]:
        node: Optional[Dict[int, Any]] = self._root
        for code in prefix:
            if node is None:
                return None
            node = node.get(code)
        return node

    def next_codes(self, prefix: Sequence[int] = ()) -> List[int]:
        """The codes that follow ``prefix`` in some occupied SID, ascending; [] for an unknown or full prefix."""
        if len(prefix) >= self.levels:
            return []
        node = self._node(prefix)
        return sorted(node) if node else []

    def has_prefix(self, prefix: Sequence[int]) -> bool:
        """True when some occupied SID starts with ``prefix`` (a full SID included)."""
        if len(prefix) > self.levels:
            return False
        if len(prefix) == self.levels:
            return tuple(prefix) in self
        return bool(self._node(prefix))

    def __contains__(self, sid: object) -> bool:
        if not isinstance(sid, (tuple, list)) or len(sid) != self.levels:
            return False
        node = self._node(sid[:-1])
        return node is not None and sid[-1] in node

    def __len__(self) -> int:
        return self._size

    def __iter__(self) -> Iterator[Sid]:
        """The occupied SIDs in lexicographic order."""
        def walk(node: Dict[int, Any], prefix: Sid) -> Iterator[Sid]:
            for code in sorted(node):
                child = node[code]
                if child is None:
                    yield prefix + (code,)
                else:
                    yield from walk(child, prefix + (code,))
        return walk(self._root, ())
