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

import pickle

import pytest

import anypickle

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
