"""read_npy on .npy files written here byte by byte (format 1.0), and on the shared scientific embeddings."""
from __future__ import annotations

import os
import struct
import tempfile
import unittest

from sidx_client import read_npy
from tests.support import SCIENTIFIC


def npy_bytes(descr: str, shape: tuple, payload: bytes) -> bytes:
    header = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}".encode("latin1")
    header += b" " * (63 - (10 + len(header)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + payload


class ReadNpyTest(unittest.TestCase):
    def write(self, data: bytes) -> str:
        fd, path = tempfile.mkstemp(suffix=".npy")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        self.addCleanup(os.remove, path)
        return path

    def test_rows_of_float32(self) -> None:
        values = [0.5, -1.25, 3.0, 1e-3, 7.0, -0.0]
        path = self.write(npy_bytes("<f4", (3, 2), struct.pack("<6f", *values)))
        rows = read_npy(path)
        self.assertEqual([list(r) for r in rows], [[0.5, -1.25], [3.0, struct.unpack("<f", struct.pack("<f", 1e-3))[0]], [7.0, -0.0]])
        self.assertEqual(len(read_npy(path, rows=2)), 2)

    def test_refuses_other_dtypes_and_truncation(self) -> None:
        for data in (npy_bytes("<f8", (1, 2), b"\0" * 16), npy_bytes("<f4", (4,), b"\0" * 16),
                     npy_bytes("<f4", (2, 2), b"\0" * 12), b"not npy at all"):
            with self.subTest(data=data[:40]), self.assertRaises(ValueError):
                read_npy(self.write(data))

    @unittest.skipUnless(SCIENTIFIC.exists(), f"shared data not found: {SCIENTIFIC}")
    def test_scientific_text_embeddings(self) -> None:
        rows = read_npy(SCIENTIFIC)
        self.assertEqual((len(rows), len(rows[0])), (1585, 512))


if __name__ == "__main__":
    unittest.main()
