"""Sorts the event loop's `perf script` samples (bench/serve-perf.sh) into the phases of a request.

    python3 bench/perf_fold.py STACKS MAIN_MS_PER_REQUEST

Each sample goes to the first phase that names one of its frames, from the innermost frame out (a sample in
readStoredRecord under fetchItems counts as fetch). Prints each phase's share of the samples and its ms per request.
"""
import re
import sys
from collections import Counter

PHASES = [
    ('answer: serialise, hooks, socket write', r'Reply\.send|preSerializationHook|onSendHook|writePayload'),
    ('rerank: hand-off to the pool, ranking', r'scoreSubsetAsync|orderCandidatesOffThread'),
    ('fetch: the top-k records (LMDB)', r'fetchItems'),
    ('candidates: posting index', r'gatherCandidates'),
    ('retrieve: the rest of the service', r'#retrieve'),
    ('route handler: checks, embedding decode', r'decodeEmbedding|sidRows'),
    ('body: read, JSON parse, validation', r'content-type-parser\.js|onEnd '),
    ('encoder: submit, settle', r'#submit|#settle|#dispatch|resolveRun|MessagePort'),
    ('HTTP parse, routing, request hooks', r'parserOnHeadersComplete|parserOnIncoming|llhttp'),
    ('pool completion: promise plumbing', r'uv__work_done'),
    ('socket read', r'uv__read|OnUvRead'),
    ('garbage collection', r'Scaveng|MarkCompact|Heap::|GCTracer|ConcurrentMarking'),
    ('event loop wait (epoll)', r'epoll'),
]
COMPILED = [(name, re.compile(p)) for name, p in PHASES]


def main() -> None:
    path, ms = sys.argv[1], float(sys.argv[2])
    counts: Counter[str] = Counter()
    total = 0
    frames: list[str] = []

    def flush() -> None:
        nonlocal total
        if not frames:
            return
        total += 1
        for frame in frames:
            for name, pattern in COMPILED:
                if pattern.search(frame):
                    counts[name] += 1
                    return
        counts['other'] += 1

    with open(path, encoding='utf-8', errors='replace') as f:
        for line in f:
            if not line.strip():
                flush()
                frames = []
            elif line[0] in ' \t':
                frames.append(line.strip())
    flush()
    if total == 0:
        sys.exit(f'perf_fold.py: no samples in {path}')
    print(f'| event loop phase | share of {total} samples | ms per request |')
    print('|---|---:|---:|')
    for name, n in counts.most_common():
        print(f'| {name} | {100 * n / total:.1f}% | {ms * n / total:.3f} |')


if __name__ == '__main__':
    main()
