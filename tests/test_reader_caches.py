"""What the reader remembers within a load and across loads, and when it must forget.

* BUILD keeps facts about the class it builds (a real instance dict? does a
  key name a data descriptor?) under the class's version tag. Python code
  that runs during the load (a REDUCE, a finalizer) may change the class, a
  base, or a descriptor's type; the next BUILD must then behave as
  ``pickle.loads`` does, which writes the instance dict without consulting
  descriptors.
* Short ASCII strings are shared from one load to the next. The strings must
  stay equal to what ``pickle.loads`` gives, whatever the lengths, slot
  collisions, nesting or threads.

Classes are rebuilt before each load (``fresh_classes``), so that the
mutation a pickle performs while loading meets the same starting point
under ``pickle.loads`` and under ``anypickle.loads``.
"""

from __future__ import annotations

import pickle
import sys
import threading
import time
import types

import anypickle
import pytest

MODULE = __name__
EVENTS: list[str] = []


def fresh_classes() -> None:
    """(Re)define the module-level classes the pickles below name."""

    class Base:
        pass

    class NonData:
        """A non-data descriptor (only ``__get__``), of a mutable class."""

        def __get__(self, obj, owner=None):
            return "class value"

    class Target(Base):
        shadowed = NonData()
        counter = 0  # an int: its type cannot gain a __set__
        mod = types.ModuleType("held")  # immutable type, but __class__ can change

    class Watched:
        def __getattribute__(self, name):
            EVENTS.append(f"getattribute {name}")
            return object.__getattribute__(self, name)

    class Finalized:
        pass

    class WithNew(Base):
        def __new__(cls):
            self = super().__new__(cls)
            self.x = Finalized()  # replaced by BUILD, which drops it
            return self

    for cls in (Base, NonData, Target, Finalized, WithNew, Watched):
        cls.__module__ = MODULE
        cls.__qualname__ = cls.__name__
        globals()[cls.__name__] = cls
    EVENTS.clear()


def _readonly(cls: type, name: str) -> None:
    setattr(cls, name, property(lambda self: "property value"))


def _raise_on_set(self, obj, value):
    raise AssertionError("BUILD must not call a descriptor's __set__")


def mutate(kind: str) -> str:
    """Run while loading (REDUCE): change a class between two BUILDs."""
    if kind == "property_on_class":
        _readonly(globals()["Target"], "x")
    elif kind == "property_on_base":
        _readonly(globals()["Base"], "x")
    elif kind == "descriptor_gains_set":
        globals()["NonData"].__set__ = _raise_on_set
    elif kind == "module_gains_set":

        class SettableModule(types.ModuleType):
            def __set__(self, obj, value):
                raise AssertionError("BUILD must not call a descriptor's __set__")

        globals()["Target"].mod.__class__ = SettableModule
    elif kind == "int_replaced_by_property":
        _readonly(globals()["Target"], "counter")
    else:
        raise ValueError(kind)
    return kind


class Mutation:
    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __reduce__(self):
        return mutate, (self.kind,)


def _target(**attrs):
    obj = globals()["Target"].__new__(globals()["Target"])
    obj.__dict__.update(attrs)
    return obj


def _load_both(data: bytes):
    """(pickle's result or exception, anypickle's), each from fresh classes."""
    results = []
    for load in (pickle.loads, anypickle.loads):
        fresh_classes()
        try:
            results.append(("ok", load(data), list(EVENTS)))
        except Exception as e:  # noqa: BLE001 - compared with the oracle's
            results.append(("raised", type(e), list(EVENTS)))
    return results


def _summary(result):
    kind, value, events = result
    if kind == "raised":
        return kind, value, events
    return kind, [vars(x) if hasattr(x, "__dict__") else x for x in value], events


@pytest.mark.parametrize("protocol", [2, 5])
@pytest.mark.parametrize("deterministic", [True, False])
@pytest.mark.parametrize(
    ("kind", "key"),
    [
        ("property_on_class", "x"),
        ("property_on_base", "x"),
        ("descriptor_gains_set", "shadowed"),
        ("int_replaced_by_property", "counter"),
        ("module_gains_set", "mod"),
    ],
)
def test_class_changed_between_builds(kind, key, protocol, deterministic):
    """The first BUILD caches ``key`` as plain; the mutation makes it a data
    descriptor; the second BUILD must write the dict, as pickle does."""
    fresh_classes()
    data = anypickle.dumps(
        [_target(**{key: 1}), Mutation(kind), _target(**{key: 2})],
        protocol,
        deterministic=deterministic,
    )
    oracle, ours = _load_both(data)
    assert oracle[0] == "ok"
    assert _summary(ours) == _summary(oracle)
    assert vars(ours[1][2]) == {key: 2}


@pytest.mark.parametrize("protocol", [2, 5])
def test_state_dict_shared_path_sees_the_change_too(protocol):
    """A memoized (shared) state dict goes through the dict path of BUILD."""
    fresh_classes()
    first, second = _target(x=1), _target()
    second.__dict__ = first.__dict__  # one dict, memoized, BUILT twice
    data = anypickle.dumps([first, Mutation("property_on_class"), second], protocol)
    oracle, ours = _load_both(data)
    assert _summary(ours) == _summary(oracle)


def test_finalizer_changes_the_class_being_built():
    """Storing ``x`` drops the value ``__new__`` put there; on the second
    instance its finalizer makes ``y`` a read-only property of the class
    before ``y`` is stored (which ``y`` was cached as plain for)."""
    fresh_classes()
    cls = globals()["WithNew"]

    def readonly_y_on_second(self):
        EVENTS.append("del")
        if len(EVENTS) == 2:
            _readonly(cls, "y")

    globals()["Finalized"].__del__ = readonly_y_on_second
    a, b = cls(), cls()
    EVENTS.clear()
    a.__dict__.update(x=1, y=1)
    b.__dict__.update(x=2, y=2)
    data = pickle.dumps([a, b], 5)

    results = []
    for load in (pickle.loads, anypickle.loads):
        fresh_classes()
        fresh = globals()["WithNew"]

        def hook(self, fresh=fresh):
            EVENTS.append("del")
            if len(EVENTS) == 2:
                _readonly(fresh, "y")

        globals()["Finalized"].__del__ = hook
        loaded = load(data)
        results.append(([vars(x) for x in loaded], list(EVENTS)))
    assert results[1] == results[0]
    assert results[0][0] == [{"x": 1, "y": 1}, {"x": 2, "y": 2}]


def test_build_reads_dict_through_getattribute_as_pickle_does():
    fresh_classes()
    objs = [globals()["Watched"]() for _ in range(3)]
    for i, obj in enumerate(objs):
        obj.__dict__["x"] = i
    EVENTS.clear()
    data = pickle.dumps(objs, 5)
    oracle, ours = _load_both(data)
    assert _summary(ours) == _summary(oracle)
    assert "getattribute __dict__" in oracle[2]


def test_loaded_data_pickles_to_the_same_bytes_again():
    """Equal short strings that were distinct objects stay distinct when
    loaded (one load never hands out a cached string twice), and the shared
    table's extra reference changes nothing the writer writes."""

    class Rec:
        pass

    globals()["Rec"] = Rec
    Rec.__qualname__ = "Rec"
    recs = []
    for i in range(6):
        rec = Rec()
        rec.label, rec.kind = f"item-{i}", "".join(["sh", "ort"])  # distinct objects
        recs.append(rec)
    shared = "".join(["sha", "red"])
    data = anypickle.dumps([recs, shared, shared, "".join(["sha", "red"])])
    for _ in range(3):
        loaded = anypickle.loads(data)
        assert loaded[1] is loaded[2] and loaded[1] is not loaded[3]
        assert len({id(r.kind) for r in loaded[0]}) == 6
        assert anypickle.dumps(loaded) == data == pickle.dumps(pickle.loads(data), 5)


# ----------------------------------------------------------------------------- strings


def _text(n: int, i: int = 0) -> str:
    """A fresh (not interned) ASCII string of length ``n``."""
    return "".join(chr(97 + (i + k) % 26) for k in range(n))


@pytest.mark.parametrize("length", range(0, 40))
@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_every_length_round_trips(length, protocol):
    values = [_text(length), _text(length, 3) + "é"[: length > 5], "\udc80" * (length % 3)]
    data = pickle.dumps(values, protocol)
    for _ in range(3):  # the second and third loads find them cached
        assert anypickle.loads(data) == pickle.loads(data)


def test_short_ascii_strings_are_shared_between_loads():
    data = pickle.dumps([_text(2), _text(20), _text(32), _text(33), "grüße"])
    first, second = anypickle.loads(data), anypickle.loads(data)
    assert first == second == pickle.loads(data)
    shared = [a is b for a, b in zip(first, second, strict=True)]
    assert shared == [True, True, True, False, False]


def test_colliding_and_distinct_strings_stay_correct():
    """Far more strings than slots: every slot sees many different strings."""
    words = [f"k{i:05d}" for i in range(5000)]
    data = pickle.dumps(words, 5)
    for _ in range(3):
        assert anypickle.loads(data) == words
    # Alternating small pickles whose strings share slots with the above.
    for i in range(0, 5000, 97):
        small = pickle.dumps({words[i]: words[-i - 1]}, 5)
        assert anypickle.loads(small) == {words[i]: words[-i - 1]}


class Slotted:
    __slots__ = ("adopted_slot_name", "other_slot_name")


def test_attribute_names_interned_elsewhere_are_shared_from_then_on():
    """BUILD interns attribute names; where the interned copy is another
    object, the shared table keeps that copy for later loads."""
    obj = Slotted()
    obj.adopted_slot_name, obj.other_slot_name = 1, 2
    plain = types.SimpleNamespace(**{"adopted_dict_key": 3})
    # The names as data too: fresh str objects, never memoized with the keys.
    names = ["".join(["adopted_", "slot_name"]), "".join(["adopted_", "dict_key"])]
    # One pickle protocol only: once adopted, a string stays in the table
    # until a colliding string replaces it.
    built = pickle.dumps([obj, plain], 5)
    data_only = pickle.dumps(names, 5)
    before = anypickle.loads(data_only)
    for _ in range(2):
        loaded = anypickle.loads(built)
        assert loaded[0].adopted_slot_name == 1 and loaded[1].adopted_dict_key == 3
    after = anypickle.loads(data_only)
    assert before == after == names == pickle.loads(data_only)
    # Before any BUILD named them, the table held its own strings; then
    # it hands out the interned ones.
    assert [s is sys.intern(s) for s in before] == [False, False]
    assert [s is sys.intern(s) for s in after] == [True, True]


def test_data_strings_never_interned_stay_mortal():
    """Only strings the interpreter interned anyway enter the table as
    interned ones: a data string that no BUILD names is never interned."""
    word = "".join(["never", "_interned_", "word"])
    data = pickle.dumps([word, {"k": word}], 5)
    for _ in range(3):
        loaded = anypickle.loads(data)
        assert loaded[0] == word
    if hasattr(sys, "_is_interned"):  # 3.13+
        assert not sys._is_interned(loaded[0])
    assert sys.getrefcount(loaded[0]) < 10


class NestedLoad:
    """Loading it loads another pickle from inside the first load."""

    def __init__(self, inner: bytes) -> None:
        self.inner = inner

    def __reduce__(self):
        return anypickle.loads, (self.inner,)


def test_load_nested_in_a_load():
    inner = pickle.dumps(["inner", "shared", _text(10)], 5)
    data = pickle.dumps(["outer", NestedLoad(inner), "shared", _text(10)], 5)
    expected = ["outer", ["inner", "shared", _text(10)], "shared", _text(10)]
    for _ in range(3):
        assert anypickle.loads(data) == expected


def yield_gil(value: str) -> str:
    """Run while loading: let another thread run in the middle of the load."""
    time.sleep(0)
    return value


class YieldGil:
    def __reduce__(self):
        return yield_gil, ("yielded",)


def test_threads_loading_at_once():
    """Loads on several threads, switching in the middle of a load (inside
    a REDUCE), each get their own strings right."""
    payloads = [
        pickle.dumps(
            [_text(3 + t, k) for k in range(150)]
            + [YieldGil(), NestedLoad(pickle.dumps(_text(9, t)))]
            + [_text(3 + t, k) for k in range(150, 300)],
            5,
        )
        for t in range(4)
    ]
    expected = [pickle.loads(p) for p in payloads]
    failures: list[str] = []

    def work(t: int) -> None:
        for _ in range(50):
            if anypickle.loads(payloads[t]) != expected[t]:
                failures.append(f"thread {t}")

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


# ------------------------------------------------- find_class reads plain module dicts


def _module(name: str, **attrs: object) -> types.ModuleType:
    module = types.ModuleType(name)
    vars(module).update(attrs)
    return module


def _global(module: str, name: str, protocol: int) -> bytes:
    """A pickle of just ``module.name`` by reference (GLOBAL or STACK_GLOBAL)."""
    if protocol < 4:
        return b"\x80\x02c" + module.encode() + b"\n" + name.encode() + b"\n."
    m, n = module.encode(), name.encode()
    return b"\x80\x04\x8c" + bytes([len(m)]) + m + b"\x8c" + bytes([len(n)]) + n + b"\x93."


@pytest.fixture
def fake_modules(monkeypatch):
    """Modules whose attribute access the module-dict shortcut must get right."""

    class WithProperty(types.ModuleType):
        @property
        def shadowed(self):
            return "from the property"

    def module_getattr(name: str) -> str:
        if name.startswith("lazy_"):
            return f"made {name}"
        raise AttributeError(name)

    lazy = _module("ap_lazy_mod", present=1, __getattr__=module_getattr)
    sub = _module("ap_sub_mod", shadowed="from the dict", plain=2)
    sub.__class__ = WithProperty
    dunder = _module("ap_dunder_mod", **{"__dict__": "fake", "__class__": "fake"})
    nested = _module("ap_nested_mod", Outer=types.SimpleNamespace(inner="deep"))
    for m in (lazy, sub, dunder, nested):
        monkeypatch.setitem(sys.modules, m.__name__, m)
    return {"lazy": lazy, "sub": sub, "dunder": dunder, "nested": nested}


@pytest.mark.parametrize("protocol", [2, 4])
@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("ap_lazy_mod", "present"),
        ("ap_lazy_mod", "lazy_thing"),  # from the module's __getattr__
        ("ap_sub_mod", "shadowed"),  # a ModuleType subclass: its property wins
        ("ap_sub_mod", "plain"),
        ("ap_dunder_mod", "__dict__"),  # the real dict, not the entry
        ("ap_dunder_mod", "__class__"),
    ],
)
def test_find_class_reads_modules_as_getattr_does(fake_modules, module, name, protocol):
    data = _global(module, name, protocol)
    expected = pickle.loads(data)
    got = anypickle.loads(data)
    assert got is expected or got == expected
    assert type(got) is type(expected)


@pytest.mark.parametrize("protocol", [2, 4])
def test_find_class_missing_names_fail_as_in_pickle(fake_modules, protocol):
    data = _global("ap_lazy_mod", "missing", protocol)
    with pytest.raises(AttributeError) as theirs:
        pickle.loads(data)
    with pytest.raises(AttributeError) as ours:
        anypickle.loads(data)
    assert str(ours.value) == str(theirs.value)


def test_find_class_dotted_names_start_from_the_module_dict(fake_modules):
    data = _global("ap_nested_mod", "Outer.inner", 4)
    assert anypickle.loads(data) == pickle.loads(data) == "deep"
    del fake_modules["nested"].Outer
    with pytest.raises(AttributeError):
        anypickle.loads(data)


def test_find_class_sees_module_changes_between_loads(fake_modules):
    data = _global("ap_lazy_mod", "present", 4)
    assert anypickle.loads(data) == 1
    fake_modules["lazy"].present = 2
    assert anypickle.loads(data) == 2


@pytest.mark.parametrize("protocol", [2, 4])
@pytest.mark.parametrize("name", ["\udc80", "_\udc80", "__\udc80", "x\u00e9"])
def test_find_class_odd_names_fail_as_in_pickle(fake_modules, protocol, name):
    """Names that are not valid UTF-8 text, or not ASCII, from STACK_GLOBAL."""
    encoded = name.encode("utf-8", "surrogatepass")
    m = b"ap_lazy_mod"
    data = (
        bytes([0x80, protocol])
        + b"\x8c"
        + bytes([len(m)])
        + m
        + b"\x8c"
        + bytes([len(encoded)])
        + encoded
        + b"\x93."
    )
    with pytest.raises(Exception) as theirs:
        pickle.loads(data)
    with pytest.raises(Exception) as ours:
        anypickle.loads(data)
    assert isinstance(ours.value, type(theirs.value))
