"""Sorts the event loop's `perf script` samples (bench/serve-perf.sh) into the phases of a request.

    python3 bench/perf_fold.py STACKS MAIN_MS_PER_REQUEST
    python3 bench/perf_fold.py STACKS MAIN_MS_PER_REQUEST --against OTHER_STACKS OTHER_MS [--phase PREFIX] [--top N]

Each sample goes to the first phase that names one of its frames, from the innermost frame out (a sample in
readStoredRecord under fetchItems counts as fetch). Prints each phase's share of the samples and its ms per request;
then, when the stacks carry each frame's object (`perf script -F tid,ip,sym,dso`), the same samples by the code
their innermost frame runs (kernel, LMDB, the sidx addon, Node/V8/libc, JIT-compiled JS), and the share spent waking
a reader of a socket this thread wrote to (`sock_def_readable` in the stack: on loopback, the client).

With --against, the two files' samples of one phase (by its name's prefix; all phases without --phase) by innermost
frame, in microseconds per request side by side, the frames that cost the first file most over the second first:
e.g. sidx beside the bare route (serve-perf.sh --peer bare) on the same bodies.
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

ORIGINS = [
    ('kernel', r'\[kernel'),
    ('LMDB', r'lmdb'),
    ('sidx addon (native/)', r'sidx_faiss\.node'),
    ('JIT-compiled JS', r'perf-\d+\.map|JS:'),
    ('Node, V8 and libc (C++, builtins)', r'.'),
]
ORIGINS_COMPILED = [(name, re.compile(p)) for name, p in ORIGINS]


def origin_of(frame: str) -> str | None:
    """The code a frame runs, from its object in parentheses; None when the line names no object."""
    m = re.search(r'\(([^()]*)\)\s*$', frame)
    if not m:
        return None
    for name, pattern in ORIGINS_COMPILED:
        if pattern.search(m.group(1)) or (name == 'JIT-compiled JS' and frame.split(' ', 1)[-1].startswith('JS:')):
            return name
    return None


def read_samples(path: str):
    """Each sample's frames, innermost first."""
    frames: list[str] = []
    with open(path, encoding='utf-8', errors='replace') as f:
        for line in f:
            if not line.strip():
                if frames:
                    yield frames
                frames = []
            elif line[0] in ' \t':
                frames.append(line.strip())
    if frames:
        yield frames


def phase_of(frames: list[str]) -> str:
    for frame in frames:
        for name, pattern in COMPILED:
            if pattern.search(frame):
                return name
    return 'other'


def leaf_us(path: str, ms: float, phase: str) -> dict[str, float]:
    """Microseconds per request by innermost frame (address dropped), over the samples of phases named `phase...`."""
    counts: Counter[str] = Counter()
    total = 0
    for frames in read_samples(path):
        total += 1
        if phase_of(frames).startswith(phase):
            # JIT frames name their process's perf map: dropped, so that two processes' frames compare.
            counts[re.sub(r'\s*\(/tmp/perf-\d+\.map\)$', '', re.sub(r'^[0-9a-f]+\s+', '', frames[0]))] += 1
    if total == 0:
        sys.exit(f'perf_fold.py: no samples in {path}')
    return {leaf: 1000 * ms * n / total for leaf, n in counts.items()}


def compare(argv: list[str]) -> None:
    opts = dict(zip(argv[2::2], argv[3::2]))
    first, second = argv[0], opts['--against']
    phase = opts.get('--phase', '')
    a = leaf_us(first, float(argv[1]), phase)
    b = leaf_us(second, float(opts['--against-ms']), phase)
    print(f'phase "{phase or "(all)"}": {sum(a.values()):.2f} us per request in {first}, {sum(b.values()):.2f} in {second}')
    print(f'| innermost frame | {first} us | {second} us |\n|---|---:|---:|')
    for leaf in sorted(set(a) | set(b), key=lambda k: b.get(k, 0) - a.get(k, 0))[:int(opts.get('--top', '20'))]:
        print(f'| {leaf[:90]} | {a.get(leaf, 0):.2f} | {b.get(leaf, 0):.2f} |')


def main() -> None:
    if '--against' in sys.argv:
        # STACKS MS --against OTHER OTHER_MS [...]: normalise to flag pairs
        i = sys.argv.index('--against')
        compare(sys.argv[1:3] + [sys.argv[i], sys.argv[i + 1], '--against-ms', sys.argv[i + 2]] + sys.argv[i + 3:])
        return
    path, ms = sys.argv[1], float(sys.argv[2])
    counts: Counter[str] = Counter()
    origins: Counter[str] = Counter()
    total = 0
    wakes = 0
    for frames in read_samples(path):
        total += 1
        origin = origin_of(frames[0])
        if origin:
            origins[origin] += 1
        if any('sock_def_readable' in frame for frame in frames):
            wakes += 1
        counts[phase_of(frames)] += 1
    if total == 0:
        sys.exit(f'perf_fold.py: no samples in {path}')
    print(f'| event loop phase | share of {total} samples | ms per request |')
    print('|---|---:|---:|')
    for name, n in counts.most_common():
        print(f'| {name} | {100 * n / total:.1f}% | {ms * n / total:.3f} |')
    if origins:
        print(f'\n| code (innermost frame) | share | ms per request |\n|---|---:|---:|')
        for name, n in origins.most_common():
            print(f'| {name} | {100 * n / total:.1f}% | {ms * n / total:.4f} |')
    print(f'\nwaking a socket\'s reader (sock_def_readable): {100 * wakes / total:.1f}% of the samples, {ms * wakes / total:.4f} ms per request')


if __name__ == '__main__':
    main()
