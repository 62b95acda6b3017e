"""Reads float32 ``.npy`` embedding files without numpy (to upsert them from a stdlib-only Python)."""
from __future__ import annotations

import ast
import struct
import sys
from array import array
from pathlib import Path
from typing import List, Optional, Union


def read_npy(path: Union[str, Path], rows: Optional[int] = None) -> List["array[float]"]:
    """The rows of a 2-d little-endian float32 C-order ``.npy`` file (the first ``rows`` when given), each an
    ``array('f')`` that :meth:`~sidx_client.SidxClient.upsert` sends as base64."""
    with open(path, "rb") as f:
        if f.read(6) != b"\x93NUMPY":
            raise ValueError(f"{path} is not a .npy file")
        major = f.read(2)[0]
        (header_len,) = struct.unpack("<H" if major == 1 else "<I", f.read(2 if major == 1 else 4))
        header = ast.literal_eval(f.read(header_len).decode("latin1"))
        shape = header.get("shape", ())
        if header.get("descr") != "<f4" or header.get("fortran_order") or len(shape) != 2:
            raise ValueError(f"{path}: expected a C-order 2-d <f4 array, got {header}")
        n, dim = shape
        out: List["array[float]"] = []
        for _ in range(n if rows is None else min(rows, n)):
            row = array("f")
            row.frombytes(f.read(4 * dim))
            if len(row) != dim:
                raise ValueError(f"{path} is truncated at row {len(out)}")
            if sys.byteorder == "big":  # pragma: no cover
                row.byteswap()
            out.append(row)
        return out
