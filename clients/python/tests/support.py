"""Test support: a real ``sidx serve`` child process and the real scientific embeddings (stdlib .npy reader)."""
from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from array import array
from pathlib import Path
from collections import deque
from typing import Deque, Dict, List, Optional

from sidx_client import read_npy

REPO_ROOT = Path(__file__).resolve().parents[3]
SIDX_BIN = REPO_ROOT / "bin" / "sidx.js"
#: The shared real data sets (never copied into the repo); SIDX_SHARED_DATA overrides, as for the node tests.
SHARED_DATA = Path(os.environ.get("SIDX_SHARED_DATA") or REPO_ROOT.parent / "shared" / "data")
SCIENTIFIC = SHARED_DATA / "scientific" / "text_emb.npy"


def catalog_embeddings(n: int, dim: int = 512) -> Dict[str, "array[float]"]:
    """``n`` items: the scientific text embeddings when ../shared/data is there, else seeded Gaussian vectors."""
    if SCIENTIFIC.exists():
        return {f"sci-{i}": row for i, row in enumerate(read_npy(SCIENTIFIC, n))}
    rng = random.Random(7)
    return {f"syn-{i}": array("f", (rng.gauss(0.0, 1.0) for _ in range(dim))) for i in range(n)}


class ServeProcess:
    """``node bin/sidx.js serve --port 0`` on a fresh data directory, stopped with SIGTERM."""

    def __init__(self, env: Optional[Dict[str, str]] = None, model: str = "models/default",
                 data_dir: Optional[str] = None) -> None:
        self.own_dir = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="sidx-pyclient-")
        self.env = {**os.environ, "SIDX__SERVER__LOG_LEVEL": "warn", **(env or {})}
        self.model = model
        self.proc: Optional[subprocess.Popen[str]] = None
        self.url = ""
        self.log: Deque[str] = deque(maxlen=400)

    def sidx(self, *args: str) -> str:
        """Runs a ``sidx`` CLI command on this data directory; its stdout."""
        out = subprocess.run(["node", str(SIDX_BIN), *args, "--data-dir", self.data_dir], cwd=REPO_ROOT,
                             env=self.env, capture_output=True, text=True, timeout=120, check=True)
        return out.stdout

    def start(self, timeout: float = 120.0) -> str:
        self.proc = subprocess.Popen(
            ["node", str(SIDX_BIN), "serve", "--port", "0", "--host", "127.0.0.1", "--data-dir", self.data_dir,
             "--model", self.model],
            cwd=REPO_ROOT, env={**self.env, "SIDX__SERVER__LOG_LEVEL": "info"}, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True)
        found = threading.Event()

        def drain() -> None:
            assert self.proc is not None and self.proc.stdout is not None
            for line in self.proc.stdout:
                self.log.append(line)
                m = re.search(r"listening at (http://127\.0\.0\.1:\d+)", line, re.I)
                if m and not found.is_set():
                    self.url = m.group(1)
                    found.set()

        threading.Thread(target=drain, daemon=True).start()
        deadline = time.monotonic() + timeout
        while not found.wait(0.1):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("sidx serve did not start:\n" + "".join(self.log))
        return self.url

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)


def node_available() -> bool:
    return shutil.which("node") is not None and SIDX_BIN.exists()
