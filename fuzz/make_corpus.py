#!/usr/bin/env python3
"""Write the seed corpus of ``fuzz/mutate_loads.py`` to ``fuzz/corpus/``.

Usage::

    .venv/bin/python fuzz/make_corpus.py [--out fuzz/corpus] [--count 200]

Seeds, each in a file named by the SHA-1 of its content:

* about ``--count`` small valid pickles: ``tests/corpus.py`` entries pickled by
  the stdlib's ``pickle.dumps`` at protocols 0-5 (with the corpus's copyreg
  extension codes registered, so EXT1/EXT2/EXT4 appear), numpy and unpicklable
  entries left out, at most 2 KiB each.  They are chosen greedily to cover
  every (opcode, protocol) pair the candidates use, then filled up with one
  pickle of each entry not chosen yet (fixed shuffled order, protocols in turn);
* a few larger framed pickles (strings and bytes of 64 KiB and more are written
  outside frames, several frames, batches of 1000);
* every input of the malformed catalogue (``tests/test_reader_malformed.py``)
  up to 64 KiB.

Runs with ``PYTHONHASHSEED=0`` (it re-executes itself if needed) so that sets of
strings pickle in the same order every time: the output is reproducible.
Files in the output directory that the script did not write are removed; the
total size stays under 2 MB.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pickle
import pickletools
import random
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TESTS = REPO / "tests"
MAX_SMALL = 2048
MAX_TOTAL = 2_000_000

#: Entries pickled as larger, framed seeds: (entry id, protocol).
LARGE_ENTRIES = {
    ("str:len70000", 4),
    ("bytes:len70000", 5),
    ("bytearray:len70000", 5),
    ("list:strs-1001", 4),
    ("dict:1001", 5),
}


def _opcode_keys(data, protocol):
    return {(op.name, protocol) for op, _, _ in pickletools.genops(data)}


def _candidates(corpus_module):
    """[(entry_id, protocol, data)] of every picklable entry at every protocol."""
    result = []
    with corpus_module.extension_codes():
        for entry_id, obj in corpus_module.corpus():
            if entry_id.startswith(("unpicklable:", "numpy:")):
                continue
            for protocol in range(6):
                try:
                    data = pickle.dumps(obj, protocol)
                except Exception:
                    continue
                result.append((entry_id, protocol, data))
    return result


def _choose_small(candidates, count):
    small = [c for c in candidates if len(c[2]) <= MAX_SMALL]
    small.sort(key=lambda c: (len(c[2]), c[0], c[1]))
    chosen, chosen_ids = [], set()
    # Greedy cover of the (opcode, protocol) pairs, smallest pickle first on ties.
    keys = {id(c): _opcode_keys(c[2], c[1]) for c in small}
    remaining = set().union(*keys.values())
    while remaining and len(chosen) < count:
        best = max(small, key=lambda c: (len(keys[id(c)] & remaining), -len(c[2])))
        gain = keys[id(best)] & remaining
        if not gain:
            break
        chosen.append(best)
        chosen_ids.add(best[0])
        remaining -= gain
    # Then one pickle of each entry not chosen yet (in a fixed shuffled order), cycling
    # through the protocols.
    by_entry = {}
    for entry_id, protocol, data in small:
        by_entry.setdefault(entry_id, {})[protocol] = data
    order = sorted(by_entry)
    random.Random(0).shuffle(order)
    for turn, entry_id in enumerate(e for e in order if e not in chosen_ids):
        if len(chosen) >= count:
            break
        options = by_entry[entry_id]
        protocol = turn % 6 if turn % 6 in options else min(options)
        chosen.append((entry_id, protocol, options[protocol]))
    return chosen


def main(argv=None):
    if os.environ.get("PYTHONHASHSEED") != "0":
        env = dict(os.environ, PYTHONHASHSEED="0")
        os.execve(sys.executable, [sys.executable, *sys.argv], env)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(REPO / "fuzz" / "corpus"))
    parser.add_argument("--count", type=int, default=200, help="small valid pickles")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(TESTS))
    import corpus
    import test_reader_malformed

    candidates = _candidates(corpus)
    seeds = {}
    for _entry, _protocol, data in _choose_small(candidates, args.count):
        seeds[data] = "valid"
    for entry_id, protocol, data in candidates:
        if (entry_id, protocol) in LARGE_ENTRIES:
            seeds[data] = "large"
    for case in test_reader_malformed.CASES:
        if len(case.data) <= 65536:
            seeds.setdefault(case.data, "catalogue")

    total = sum(len(d) for d in seeds)
    if total > MAX_TOTAL:
        raise SystemExit(f"corpus would be {total} bytes, over {MAX_TOTAL}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = {}
    for data in seeds:
        names[hashlib.sha1(data).hexdigest()] = data
    for path in out.iterdir():
        if path.is_file() and path.name not in names:
            path.unlink()
    for name, data in names.items():
        path = out / name
        if not path.exists() or path.read_bytes() != data:
            path.write_bytes(data)
    kinds = {k: sum(1 for v in seeds.values() if v == k) for k in ("valid", "large", "catalogue")}
    print(
        f"{out}: {len(names)} files, {total} bytes "
        f"({kinds['valid']} small valid, {kinds['large']} large valid, "
        f"{kinds['catalogue']} catalogue inputs)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
