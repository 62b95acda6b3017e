"""Generative retrieval end to end on the scientific data set, against a running ``sidx serve``:

1. upsert the 1,585 items (text embeddings) and keep their SIDs (written as the item table ``sidx eval-beams``
   reads);
2. train a next-SID n-gram (ngram.py) on the training sequences' SIDs;
3. decode ``--beams`` SIDs for each test user, once freely and once with ``constrained_prefix_fn`` over the trie of
   ``GET /v1/sids/trie`` (the catalog's occupied SIDs);
4. resolve each user's beams through ``POST /v1/retrieve/batch`` (a query ``{sids}`` per user, 256 users per
   request) and count the hits and the SIDs that hold no item;
5. write beams-*.jsonl and truth.jsonl for ``sidx eval-beams`` (run.sh runs it).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Dict, List, Tuple

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "clients" / "python"))  # the client of this checkout, installed or not

from ngram import NextSidModel, Sid, beam_search  # noqa: E402
from sidx_client import NotFoundError, SidTrie, SidxClient, TokenLayout, constrained_prefix_fn, read_npy  # noqa: E402

RETRIEVE_BATCH = 256  # users per POST /v1/retrieve/batch


def read_rows(path: Path) -> List[Tuple[List[str], str]]:
    """RecBole .inter rows: (history item ids, oldest first; next item id)."""
    rows = []
    with open(path) as f:
        next(f)  # header
        for line in f:
            _user, history, target = line.rstrip("\n").split("\t")
            rows.append((history.split(), target))
    return rows


def catalog_trie(client: SidxClient, sids: Dict[str, Sid], levels: int) -> Tuple[SidTrie, str]:
    """The served trie; before the server has the route, the same set built from the upsert answers."""
    try:
        return client.trie(), "GET /v1/sids/trie"
    except NotFoundError as err:
        if err.code != "SIDX_ERR_ROUTE_NOT_FOUND":
            raise
        return SidTrie(levels, sids.values()), "the upsert answers (this server has no /v1/sids/trie)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--dataset", default=str(HERE.parents[1].parent / "shared" / "data" / "scientific"))
    parser.add_argument("--out", default="out")
    parser.add_argument("--beams", type=int, default=20, help="SIDs decoded per user")
    parser.add_argument("--order", type=int, default=1, help="codes of the same SID each code is conditioned on")
    args = parser.parse_args()
    data, out = Path(args.dataset), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    client = SidxClient(args.url)
    client.wait_ready(timeout=120)
    t0 = time.monotonic()

    rows = read_npy(data / "text_emb.npy")
    sids: Dict[str, Sid] = {}
    for start in range(0, len(rows), 1000):
        res = client.upsert([(str(i), rows[i]) for i in range(start, min(start + 1000, len(rows)))])
        sids.update((item["id"], tuple(item["sid"])) for item in res["items"])
    model_id = res["model"]
    active = next(m for m in client.models()["models"] if m["id"] == model_id)
    levels, sizes = active["levels"], active["codebookSizes"]
    with open(out / "items.jsonl", "w") as f:
        f.writelines(json.dumps({"id": i, "codes": list(s)}) + "\n" for i, s in sids.items())
    print(f"upserted {len(sids)} items into {model_id} ({levels} x {sizes}): {len(set(sids.values()))} distinct SIDs")

    model = NextSidModel(levels, max(sizes), order=args.order)
    train = read_rows(data / "train.inter.tsv")
    for history, target in train:
        model.observe(sids[history[-1]], sids[target])
    print(f"n-gram (order {args.order}) trained on {len(train)} training transitions")

    trie, source = catalog_trie(client, sids, levels)
    layout = TokenLayout.contiguous(sizes, first_token_id=10)  # token ids 0-9: text / special tokens
    eos = 1
    test = read_rows(data / "test.inter.tsv")
    with open(out / "truth.jsonl", "w") as f:
        f.writelines(json.dumps([target]) + "\n" for _, target in test)

    summary = {}
    for mode in ("unconstrained", "constrained"):
        started = time.monotonic()
        hits = invalid = total = 0
        decoded: List[List[Sid]] = []
        with open(out / f"beams-{mode}.jsonl", "w") as f:
            for history, target in test:
                prev = sids[history[-1]]
                prompt = [2, *(t for item in history[-5:] for t in layout.sid_tokens(sids[item])), 3]  # <bos> SIDs <sep>
                allowed = (constrained_prefix_fn(trie, layout, prompt_length=len(prompt), eos_token_id=eos)
                           if mode == "constrained" else None)
                beams = beam_search(model, layout, prev, prompt, args.beams, allowed)
                f.write(json.dumps([list(s) for s in beams]) + "\n")
                decoded.append(beams)
                invalid += sum(1 for s in beams if s not in trie)
                total += len(beams)
        # The users' beams resolved as a generator's server would: a batch of users per request.
        for start in range(0, len(test), RETRIEVE_BATCH):
            users = range(start, min(start + RETRIEVE_BATCH, len(test)))
            answers = client.retrieve_batch([{"sids": decoded[u], "k": args.beams, "expand": "none"} for u in users])
            hits += sum(any(item["id"] == test[u][1] for item in answer["items"]) for u, answer in zip(users, answers))
        summary[mode] = {"users": len(test), "HR@%d (retrieve)" % args.beams: round(hits / len(test), 4),
                         "SIDs holding no item": invalid, "SIDs": total, "empty share": round(invalid / total, 4),
                         "seconds": round(time.monotonic() - started, 1)}
        print(f"{mode}: {json.dumps(summary[mode])}")
    print(f"trie from {source}; {len(trie)} occupied SIDs; total {time.monotonic() - t0:.0f} s")
    (out / "summary.json").write_text(json.dumps({"trie": source, **summary}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
