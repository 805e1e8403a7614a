"""Big payloads: the buffers made in fresh memory advised for huge pages.

From 8 MiB on (``HUGE_PAGE_THRESHOLD`` in ``src/fresh_memory.rs``) the reader
makes bytes and bytearray objects empty, advises them and copies the payload
in, and the writer advises its output each time it grows. These tests pin
what must not change with that: the bytes written are pickle's, the objects
loaded hold exactly the payload (a copy that missed a byte or ran past the
end would show in the pattern), and a buffer that grows many times keeps
everything written before each growth.
"""

from __future__ import annotations

import io
import pickle

import anypickle
import pytest
from reader_support import MinimalIO, ShortReadRaw

THRESHOLD = 8 << 20
SIZES = [THRESHOLD - 1, THRESHOLD, THRESHOLD + 4097, (33 << 20) + 3]


def pattern(n: int, seed: int = 0) -> bytes:
    """`n` bytes that differ from their neighbours and from every shift."""
    block = bytes((i * 7 + seed) % 251 for i in range(251))
    return (block * (n // len(block) + 1))[:n]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("protocol", [3, 4, 5])
def test_big_bytes_round_trip_both_ways(size: int, protocol: int) -> None:
    data = pattern(size)
    blob = anypickle.dumps(data, protocol)
    assert blob == pickle.dumps(data, protocol)
    assert pickle.loads(blob) == data
    loaded = anypickle.loads(blob)
    assert type(loaded) is bytes and loaded == data


@pytest.mark.parametrize("size", SIZES)
def test_big_bytearray_in_band_round_trips_both_ways(size: int) -> None:
    data = bytearray(pattern(size, seed=3))
    blob = anypickle.dumps(data, 5)
    assert blob == pickle.dumps(data, 5)
    loaded = anypickle.loads(blob)
    assert type(loaded) is bytearray and loaded == data
    loaded[0] ^= 1  # a fresh, writable copy, not a view of the input
    assert loaded != data and blob == pickle.dumps(data, 5)


def test_output_growing_many_times_keeps_what_was_written() -> None:
    # Small items between big ones: the writer's buffer is advised, then
    # grown again and again with data already in it.
    obj = []
    for i in range(6):
        obj.append(list(range(i * 1000, i * 1000 + 500)))
        obj.append(pattern(THRESHOLD + i * 123_457, seed=i))
        obj.append(f"item {i}")
    for protocol in (4, 5):
        blob = anypickle.dumps(obj, protocol)
        assert blob == pickle.dumps(obj, protocol)
        assert anypickle.loads(blob) == obj


def test_big_payloads_through_a_file(tmp_path) -> None:
    obj = [pattern(THRESHOLD + 11), bytearray(pattern(THRESHOLD + 5, seed=9))]
    path = tmp_path / "big.pkl"
    with open(path, "wb") as f:
        anypickle.dump(obj, f, 5)
    assert path.read_bytes() == pickle.dumps(obj, 5)
    with open(path, "rb") as f:
        assert anypickle.load(f) == obj


def test_big_out_of_band_buffer_is_not_copied() -> None:
    data = bytearray(pattern(THRESHOLD + 1, seed=5))
    buffers: list[pickle.PickleBuffer] = []
    blob = anypickle.dumps(pickle.PickleBuffer(data), 5, buffer_callback=buffers.append)
    assert len(blob) < 100
    view = memoryview(anypickle.loads(blob, buffers=buffers))
    assert view == data
    data[0] ^= 1
    assert view[0] == data[0]  # the same memory


# ----------------------------------------------------------------------------- files
# A payload of 1 MiB or more still in the file is read with the file's
# `readinto` into a buffer of its own (src/unpickler/file_source.rs).

LARGE = 1 << 20


class KeepsViews(io.BytesIO):
    """A file whose ``readinto`` keeps the memoryview it is handed."""

    def __init__(self, data: bytes, keep_slice: bool) -> None:
        super().__init__(data)
        self.kept: list[memoryview] = []
        self.keep_slice = keep_slice

    def readinto(self, buffer):  # type: ignore[override]
        n = super().readinto(buffer)
        self.kept.append(buffer[:10] if self.keep_slice else buffer)
        return n


class ReadintoReturns(io.BytesIO):
    """A file whose ``readinto`` fills the buffer but reports ``result``."""

    def __init__(self, data: bytes, result: object) -> None:
        super().__init__(data)
        self.result = result

    def readinto(self, buffer):  # type: ignore[override]
        super().readinto(buffer)
        return self.result


def _file_kinds(tmp_path):
    def real_file(data: bytes):
        path = tmp_path / "big.pkl"
        path.write_bytes(data)
        return open(path, "rb")

    return {
        "bytesio": io.BytesIO,
        "real-file": real_file,
        "short-reads": lambda d: ShortReadRaw(d, 65536),
        "buffered-short-reads": lambda d: io.BufferedReader(ShortReadRaw(d, 100_000), 4096),
        "read-and-readline-only": MinimalIO,
    }


BIG_OBJECTS = {
    "bytes": lambda: pattern(3 * LARGE + 17),
    "bytearray": lambda: bytearray(pattern(2 * LARGE + 1, seed=1)),
    "str": lambda: pattern(LARGE + 5, seed=2).decode("latin-1"),
    "just-large": lambda: pattern(LARGE, seed=4),
    "just-below": lambda: pattern(LARGE - 1, seed=6),
    "mixed": lambda: [1, pattern(LARGE + 3), "x" * 100, bytearray(pattern(LARGE * 2, 7)), 2.5],
}


@pytest.mark.parametrize(
    "kind",
    ["bytesio", "real-file", "short-reads", "buffered-short-reads", "read-and-readline-only"],
)
@pytest.mark.parametrize("what", sorted(BIG_OBJECTS))
def test_big_payloads_from_every_kind_of_file(kind, what, tmp_path) -> None:
    obj = BIG_OBJECTS[what]()
    blobs = [pickle.dumps(obj, p) for p in (2, 4, 5)] + [pickle.dumps("after", 5)]
    f = _file_kinds(tmp_path)[kind](b"".join(blobs))
    try:
        for _ in blobs[:-1]:
            loaded = anypickle.load(f)
            assert type(loaded) is type(obj) and loaded == obj
        # Exactly at the next pickle: nothing read past STOP.
        assert anypickle.load(f) == "after"
        with pytest.raises(EOFError):
            anypickle.load(f)
    finally:
        if hasattr(f, "close"):
            f.close()


def _failure(load, data: bytes) -> tuple[type, str]:
    with pytest.raises((pickle.UnpicklingError, EOFError)) as info:
        load(data)
    return type(info.value), str(info.value)


def test_truncated_big_payload_fails_like_loads() -> None:
    blob = pickle.dumps(pattern(3 * LARGE), 5)
    for cut in (20, LARGE, LARGE + 1, 2 * LARGE + 7, len(blob) - 2, len(blob) - 1):
        from_file = _failure(lambda d: anypickle.load(io.BytesIO(d)), blob[:cut])
        assert from_file == _failure(anypickle.loads, blob[:cut])
        if cut < len(blob) - 2:
            assert from_file[0] is pickle.UnpicklingError and "truncated" in from_file[1]


def test_error_after_a_big_payload_names_the_same_offset() -> None:
    blob = pickle.dumps([pattern(2 * LARGE)], 5)
    bad = blob[:-2] + b"\xff."  # an unknown opcode where APPENDS... was
    with pytest.raises(pickle.UnpicklingError) as from_file:
        anypickle.load(io.BytesIO(bad))
    with pytest.raises(pickle.UnpicklingError) as from_bytes:
        anypickle.loads(bad)
    assert str(from_file.value) == str(from_bytes.value)
    assert str(len(bad) - 2) in str(from_file.value)


def test_a_lying_length_reads_no_more_than_the_file_holds() -> None:
    # BINBYTES8 claiming 1 TiB, backed by 3 MiB: the buffer grows only as
    # bytes arrive, so this fails as truncated without a huge allocation.
    blob = b"\x80\x05\x8e" + (1 << 40).to_bytes(8, "little") + pattern(3 * LARGE)
    with pytest.raises(pickle.UnpicklingError, match="truncated"):
        anypickle.load(io.BytesIO(blob))


@pytest.mark.parametrize("keep_slice", [False, True])
def test_a_file_keeping_the_buffer_cannot_make_it_move(keep_slice) -> None:
    """The payload's buffer is never resized or freed under a view the file
    kept: a payload that needs the buffer to grow fails with BufferError; one
    read in a single call loads, and the kept views stay usable."""
    small = pattern(LARGE, seed=8)  # read with one readinto call
    f = KeepsViews(pickle.dumps(small, 5), keep_slice)
    assert anypickle.load(f) == small
    big = pattern(4 * LARGE, seed=9)  # the buffer would grow after one call
    g = KeepsViews(pickle.dumps(big, 5), keep_slice)
    with pytest.raises(BufferError):
        anypickle.load(g)
    for view in f.kept + g.kept:
        assert bytes(view) == bytes(view)  # still backed by live memory


@pytest.mark.parametrize(
    "result, error",
    [(-1, ValueError), (10**9, ValueError), (None, TypeError), ("3", TypeError)],
)
def test_readinto_returning_nonsense_is_an_error(result, error) -> None:
    with pytest.raises(error, match="readinto"):
        anypickle.load(ReadintoReturns(pickle.dumps(pattern(2 * LARGE), 5), result))


@pytest.mark.parametrize("wrap", [bytearray, memoryview, lambda b: memoryview(bytearray(b))])
def test_big_pickles_from_other_buffers_are_copied_exactly(wrap) -> None:
    """A pickle in a buffer other than bytes is copied once (into fresh
    memory advised when big) before parsing; the copy must be exact."""
    obj = [pattern(THRESHOLD + 4097, seed=11), "tail", bytearray(pattern(LARGE, seed=12))]
    blob = pickle.dumps(obj, 5)
    assert anypickle.loads(wrap(blob)) == obj
    # A pickle that mutates its own (copied) input while loading cannot
    # change what is read next.
    source = bytearray(pickle.dumps([pattern(THRESHOLD, seed=13), ClearsBuffer(), 7], 5))
    ClearsBuffer.target = source
    loaded = anypickle.loads(source)
    assert loaded[0] == pattern(THRESHOLD, seed=13) and loaded[2] == 7
    assert not any(source)


class ClearsBuffer:
    """Unpickling it zeroes the buffer the pickle is being loaded from."""

    target: bytearray | None = None

    def __reduce__(self):
        return _clear_target, ()


def _clear_target() -> None:
    assert ClearsBuffer.target is not None
    ClearsBuffer.target[:] = bytes(len(ClearsBuffer.target))
