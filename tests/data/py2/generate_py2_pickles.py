# ruff: noqa: UP031
"""Write the Python 2 pickles of this directory (run with Python 2.7, not 3).

    python2.7 tests/data/py2/generate_py2_pickles.py

For every value of ``VALUES`` and protocols 0, 1 and 2, both Python 2
picklers (``pickle`` and ``cPickle``) write ``<name>-p<protocol>-<pickler>.pkl``;
``manifest.json`` lists the files.  The expected Python 3 results are in
``tests/test_reader_differential.py`` (``PY2_EXPECTED_LATIN1`` and friends).
The classes are those of ``tests/py2_classes.py``.
"""

import datetime
import json
import os
import pickle
import sys

import cPickle

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))

import py2_classes as m  # noqa: E402

LONG = type(2**100)  # Python 2's long


def text(escaped):
    """A Python 2 unicode object from an escaped byte string (no u"" literals: ruff drops them)."""
    return escaped.decode("unicode_escape")


def values():
    shared = [1, 2]
    cycle = []
    cycle.append(cycle)
    inst_cycle = m.NewStyle(tag="me")
    inst_cycle.me = inst_cycle
    return [
        ("none_bools", [None, True, False], (0, 1, 2)),
        ("int", 42, (0, 1, 2)),
        ("negative_int", -123456, (0, 1, 2)),
        ("int_64bit", 2**40, (0, 1, 2)),
        ("long_small", LONG(5), (0, 1, 2)),
        ("long", 2**100, (0, 1, 2)),
        ("negative_long", -(2**70), (0, 1, 2)),
        ("float", 1.5, (0, 1, 2)),
        ("str_ascii", "hello", (0, 1, 2)),
        ("str_nonascii", "caf\xe9 \xff\x00", (0, 1, 2)),
        ("str_long_nonascii", "\xe9" * 300, (0, 1, 2)),
        ("unicode", text(b"caf\\xe9 \\u20ac \\U0001f600 \\\\ \\n"), (0, 1, 2)),
        ("unicode_ascii", text(b"plain"), (0, 1, 2)),
        ("datetime", datetime.datetime(2001, 2, 3, 4, 5, 6, 7), (0, 1, 2)),
        ("date", datetime.date(2024, 2, 29), (0, 1, 2)),
        ("time", datetime.time(12, 30, 45, 123456), (0, 1, 2)),
        ("timedelta", datetime.timedelta(days=3, seconds=7, microseconds=9), (0, 1, 2)),
        ("set", set([1, 2, 3]), (0, 1, 2)),
        ("frozenset", frozenset(["a", "b"]), (0, 1, 2)),
        ("dict", {"a": 1, "b": [1, 2], text(b"c"): None, text(b"k\\xe9y"): "v\xe9"}, (0, 1, 2)),
        (
            "nested",
            {"list": [1, "x", text(b"y"), (2, 3)], "shared": [shared, shared], "t": (None, 1.5)},
            (0, 1, 2),
        ),
        ("cycle", cycle, (0, 1, 2)),
        ("old_style", m.OldStyle(a=1, b="x", c=[1, 2]), (0, 1, 2)),
        ("old_style_initargs", m.OldStyleInitArgs(1, "two"), (0, 1, 2)),
        ("new_style", m.NewStyle(a=1, b="x"), (0, 1, 2)),
        ("new_style_state", m.NewStyleState(1, "x"), (0, 1, 2)),
        ("new_style_slots", m.NewStyleSlots(1, text(b"two")), (2,)),
        ("new_style_cycle", inst_cycle, (0, 1, 2)),
        ("reduced", m.Reduced(5), (0, 1, 2)),
        ("classes", [m.OldStyle, m.NewStyle, set, m.make_reduced], (0, 1, 2)),
        ("exception", ValueError("bad", 3), (0, 1, 2)),
    ]


def main():
    manifest = []
    for name, value, protocols in values():
        for protocol in protocols:
            for pickler_name, module in (("pickle", pickle), ("cpickle", cPickle)):
                filename = "%s-p%d-%s.pkl" % (name, protocol, pickler_name)
                data = module.dumps(value, protocol)
                with open(os.path.join(HERE, filename), "wb") as f:
                    f.write(data)
                manifest.append(
                    {
                        "file": filename,
                        "name": name,
                        "protocol": protocol,
                        "pickler": pickler_name,
                    }
                )
    with open(os.path.join(HERE, "manifest.json"), "w") as f:
        json.dump(
            {"generator": "Python %s" % sys.version.split()[0], "pickles": manifest},
            f,
            indent=1,
            separators=(",", ": "),
            sort_keys=True,
        )
        f.write("\n")
    print("wrote %d pickles" % len(manifest))


if __name__ == "__main__":
    main()
