"""Embeddings on the wire: numpy arrays and ``array('f')`` as base64 of little-endian float32, sequences as JSON."""
from __future__ import annotations

import base64
import math
import sys
from array import array
from typing import Any, List, Sequence, Union

#: One embedding: a sequence of floats, a 1-d numpy array, an ``array('f')``, or base64 of little-endian float32.
Embedding = Union[Sequence[float], "array[float]", str, Any]


def _is_ndarray(x: Any) -> bool:
    # Duck-typed so numpy stays optional and is never imported here.
    return hasattr(x, "dtype") and hasattr(x, "ndim") and hasattr(x, "astype")


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def wire_embedding(x: Embedding, field: str = "embedding") -> Union[str, List[float]]:
    """The JSON value of one embedding: base64 for arrays and strings, a number list otherwise."""
    if isinstance(x, str):
        return x
    if isinstance(x, (bytes, bytearray, memoryview)):
        raise TypeError(f"{field}: give float32 bytes as base64 text (base64.b64encode(...).decode())")
    if _is_ndarray(x):
        nd: Any = x
        if nd.ndim != 1:
            raise ValueError(f"{field}: expected a 1-d array, got shape {tuple(nd.shape)}")
        return _b64(nd.astype("<f4", copy=False).tobytes())
    if isinstance(x, array) and x.typecode == "f":
        if sys.byteorder == "big":  # pragma: no cover
            x = array("f", x)
            x.byteswap()
        return _b64(x.tobytes())
    out = [float(v) for v in x]
    bad = next((i for i, v in enumerate(out) if not math.isfinite(v)), None)
    if bad is not None:
        raise ValueError(f"{field}[{bad}] is {out[bad]}: embeddings must be finite")
    return out


def wire_embeddings(xs: Any, field: str = "embeddings") -> List[Union[str, List[float]]]:
    """Many embeddings: a 2-d numpy array (one row each) or a sequence of single embeddings."""
    if _is_ndarray(xs):
        if xs.ndim != 2:
            raise ValueError(f"{field}: expected a 2-d array, got shape {tuple(xs.shape)}")
        rows = xs.astype("<f4", copy=False)
        return [_b64(row.tobytes()) for row in rows]
    return [wire_embedding(x, f"{field}[{i}]") for i, x in enumerate(xs)]
