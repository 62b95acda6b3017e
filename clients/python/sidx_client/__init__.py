"""Python client of the sidx semantic-ID service: standard library only (numpy arrays accepted when installed).

Example::

    sidx = SidxClient("http://127.0.0.1:8080", api_key=None)
    sidx.upsert({"sku-1": embedding})["items"][0]["sid"]   # [12, 7, 30]
"""
from .client import Response, SidxClient, parse_retry_after
from .constrained import TokenLayout, constrained_prefix_fn
from .embeddings import Embedding, wire_embedding, wire_embeddings
from .errors import (
    AuthenticationError, BadRequestError, ConflictError, ModelChangedError, NotFoundError, PermissionDeniedError,
    RateLimitedError, ServerError, SidxError, UnavailableError, UnreachableError,
)
from .npy import read_npy
from .trie import Sid, SidTrie, TrieFormatError, TrieUpdate, parse_next_binary, parse_trie_binary, parse_trie_json

__version__ = "0.1.0"

__all__ = [
    "SidxClient", "Response", "parse_retry_after", "TokenLayout", "constrained_prefix_fn", "Embedding",
    "wire_embedding", "wire_embeddings", "SidxError", "BadRequestError", "AuthenticationError",
    "PermissionDeniedError", "NotFoundError", "ConflictError", "RateLimitedError", "UnavailableError", "ServerError",
    "UnreachableError", "ModelChangedError",
    "read_npy", "Sid", "SidTrie", "TrieFormatError", "TrieUpdate", "parse_next_binary", "parse_trie_binary",
    "parse_trie_json",
]
