"""A wide corpus of objects to pickle, shared by the writer tests.

``corpus()`` returns ``(id, obj)`` pairs.  Ids are short ASCII strings used as
pytest ids.  Entries whose id starts with ``unpicklable:`` are objects the
stdlib refuses to pickle (at least at some protocol): for those, anypickle
must raise the same exception class.  Entries whose id starts with
``byvalue:`` are objects the stdlib refuses or cannot find again by name and
anypickle pickles by value (checked with ``by_value_equivalent``).  Any other
entry may still be refused by the stdlib at some protocols (``__slots__`` at
protocols 0-1, ``PickleBuffer`` below protocol 5, ...); the differential tests
ask the stdlib which protocols work instead of hard-coding it.

The classes are defined at module level (module ``corpus``) so that they are
pickled by reference.  Importing this module registers ``Registered`` with
``copyreg.pickle``; the copyreg extension codes used by the ``ExtOne``/
``ExtTwo``/``ExtFour`` classes are only active inside ``extension_codes()``.
"""

from __future__ import annotations

import array
import collections
import contextlib
import copyreg
import datetime
import decimal
import enum
import fractions
import functools
import math
import pathlib
import pickle
import re
import sys
import threading
import types
import uuid

try:
    import numpy
except ImportError:  # pragma: no cover - numpy is an optional test dependency
    numpy = None


# --------------------------------------------------------------------------------------
# Classes pickled by reference / by reduce
# --------------------------------------------------------------------------------------


class Plain:
    """An ordinary instance with a __dict__ (pickled through object.__reduce_ex__)."""

    def __init__(self, **attrs):
        self.__dict__.update(attrs)


class Empty:
    """An instance with an empty __dict__ (no state is written)."""


class Slotted:
    """__slots__ without __getstate__: the stdlib refuses protocols 0 and 1."""

    __slots__ = ("a", "b")

    def __init__(self, a, b=None):
        self.a = a
        if b is not None:
            self.b = b


class SlottedWithDict:
    __slots__ = ("a", "__dict__")

    def __init__(self, a, **attrs):
        self.a = a
        self.__dict__.update(attrs)


SINGLETON_NAME = "REDUCES_TO_STRING"


class ReducesToString:
    """__reduce__ returns a string: the object is pickled as a module global."""

    def __reduce__(self):
        return SINGLETON_NAME


REDUCES_TO_STRING = ReducesToString()


class Reduce2:
    def __init__(self, x, y):
        self.x = x
        self.y = y

    def __reduce__(self):
        return (Reduce2, (self.x, self.y))


class Reduce3:
    """(callable, args, state) with a __setstate__."""

    def __init__(self, x):
        self.x = x

    def __reduce__(self):
        return (Reduce3, (self.x,), {"extra": [self.x, self.x]})

    def __setstate__(self, state):
        self.state = state


class Reduce3NoSetstate:
    """(callable, args, state-dict): BUILD updates the instance __dict__."""

    def __init__(self, x=None):
        self.x = x

    def __reduce__(self):
        return (Reduce3NoSetstate, (), {"x": self.x, "y": "from-state"})


class Reduce3SlotState:
    """State given as a (dict, slotstate) pair."""

    __slots__ = ("s", "__dict__")

    def __init__(self, s=None):
        self.s = s

    def __reduce__(self):
        return (Reduce3SlotState, (), ({"d": 1}, {"s": self.s}))


class Bag(list):
    """A list subclass whose __reduce__ gives the items as a listitems iterator."""

    def __reduce__(self):
        return (Bag, (), None, iter(list(self)))


class Table(dict):
    """A dict subclass whose __reduce__ gives a dictitems iterator."""

    def __reduce__(self):
        return (Table, (), None, None, iter(list(self.items())))


def set_state_with_marker(obj, state):
    obj.__dict__.update(state)
    obj.restored_by = "state_setter"


class Reduce6:
    """6-tuple __reduce__ with a state_setter (protocol 5 writes it with BUILD of a tuple)."""

    def __init__(self, value=None):
        self.value = value

    def __reduce__(self):
        return (Reduce6, (), {"value": self.value}, None, None, set_state_with_marker)


class StatefulBag(list):
    """5-tuple __reduce__: state plus listitems (APPENDS come before BUILD)."""

    def __init__(self, items=(), tag=None):
        super().__init__(items)
        self.tag = tag

    def __reduce__(self):
        return (StatefulBag, (), {"tag": self.tag}, iter(list(self)), None)


class StatefulTable(dict):
    """5-tuple __reduce__: state plus dictitems."""

    def __init__(self, items=(), tag=None):
        super().__init__(items)
        self.tag = tag

    def __reduce__(self):
        return (StatefulTable, (), {"tag": self.tag}, None, iter(list(self.items())))


def make_tagged(tag):
    return ReduceExByProtocol(tag)


class ReduceExByProtocol:
    """__reduce_ex__ that reduces differently depending on the protocol."""

    def __init__(self, tag="x"):
        self.tag = tag

    def __reduce_ex__(self, protocol):
        if protocol < 2:
            return (make_tagged, (self.tag,))
        if protocol < 4:
            return (ReduceExByProtocol, (self.tag,))
        return (copyreg.__newobj__, (ReduceExByProtocol,), {"tag": self.tag})


class NewArgs:
    """__getnewargs__ with a __new__ that needs its arguments."""

    def __new__(cls, a, b):
        self = super().__new__(cls)
        self.a = a
        self.b = b
        return self

    def __getnewargs__(self):
        return (self.a, self.b)


class NewArgsEx:
    """__getnewargs_ex__ with keyword arguments (NEWOBJ_EX at protocol 4+)."""

    def __new__(cls, a, *, key=None):
        self = super().__new__(cls)
        self.a = a
        self.key = key
        return self

    def __getnewargs_ex__(self):
        return ((self.a,), {"key": self.key})


class NewArgsExNoKwargs:
    def __new__(cls, a):
        self = super().__new__(cls)
        self.a = a
        return self

    def __getnewargs_ex__(self):
        return ((self.a,), {})


class GetSetState:
    def __init__(self, a, b):
        self.a = a
        self.b = b

    def __getstate__(self):
        return (self.a, self.b)

    def __setstate__(self, state):
        self.a, self.b = state


class GetStateNone:
    """__getstate__ returning None: no BUILD at protocol 2+."""

    def __init__(self):
        self.lost = 1

    def __getstate__(self):
        return None


class GetStateFalsyDict:
    def __init__(self):
        self.lost = 1

    def __getstate__(self):
        return {}


class IntSub(int):
    pass


class FloatSub(float):
    pass


class StrSub(str):
    pass


class BytesSub(bytes):
    pass


class TupleSub(tuple):
    pass


class ListSub(list):
    pass


class DictSub(dict):
    pass


class SetSub(set):
    pass


class FrozenSetSub(frozenset):
    pass


class ComplexSub(complex):
    pass


class Registered:
    """Pickled through a copyreg.pickle() registration."""

    def __init__(self, value):
        self.value = value


def reduce_registered(obj):
    return (Registered, (obj.value,))


copyreg.pickle(Registered, reduce_registered)


class ExtOne:
    """Class with a 1-byte copyreg extension code (EXT1) inside extension_codes()."""


class ExtTwo:
    """Class with a 2-byte copyreg extension code (EXT2)."""


class ExtFour:
    """Class with a 4-byte copyreg extension code (EXT4)."""


# Codes chosen away from those test.pickletester uses (0x01, 0xff, 0x100, 0xabcd,
# 0xffff, 0x10000, 0x12abcdef, 0x7fffffff).
EXTENSION_CODES = {ExtOne: 0xE1, ExtTwo: 0x1234, ExtFour: 0x0ABCDEF0}


@contextlib.contextmanager
def extension_codes():
    """Register the copyreg extension codes of ExtOne/ExtTwo/ExtFour, then remove them."""
    added = []
    try:
        for cls, code in EXTENSION_CODES.items():
            copyreg.add_extension(cls.__module__, cls.__qualname__, code)
            added.append((cls, code))
        yield
    finally:
        for cls, code in added:
            copyreg.remove_extension(cls.__module__, cls.__qualname__, code)


class Outer:
    """Nested classes: protocols < 4 reach them through getattr, 4+ by qualname."""

    class Inner:
        class Deepest:
            pass

        def __init__(self, v=None):
            self.v = v


class Dotted:
    """__reduce__ returns a dotted name: reached through getattr below protocol 4."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return self.path


Outer.NESTED_SINGLETON = Dotted("Outer.NESTED_SINGLETON")


class ViaClassmethod:
    """__reduce__ whose callable is a classmethod (a method bound to the class)."""

    def __init__(self, v):
        self.v = v

    @classmethod
    def create(cls, v):
        return cls(v)

    def __reduce__(self):
        return (ViaClassmethod.create, (self.v,))


def function_without_module():
    """Its __module__ is None: pickle has to search sys.modules for it (whichmodule)."""


function_without_module.__module__ = None


class ReducingMeta(type):
    """A metaclass with its own __reduce__: its classes pickle through it."""

    def __reduce__(cls):
        return cls.__qualname__


class WithReducingMeta(metaclass=ReducingMeta):
    pass


class ArgsTupleSubclass(tuple):
    pass


class ReduceArgsTupleSubclass:
    """__reduce__ whose arguments are a tuple subclass (accepted like a tuple)."""

    def __reduce__(self):
        return (Plain, ArgsTupleSubclass(()), {"via": "tuple-subclass"})


class ReduceNamedTuple:
    """__reduce__ returning a namedtuple (a tuple subclass) instead of a tuple."""

    def __reduce__(self):
        return ReduceResult(Plain, ())


ReduceResult = collections.namedtuple("ReduceResult", "callable args")


class Color(enum.Enum):
    RED = 1
    GREEN = "green"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Perm(enum.Flag):
    R = 4
    W = 2
    X = 1


Point = collections.namedtuple("Point", "x y")


class BadReduceNotTuple:
    def __reduce__(self):
        return 42


class BadReduceList:
    def __reduce__(self):
        return [Plain, ()]


class BadReduceTooShort:
    def __reduce__(self):
        return (Plain,)


class BadReduceTooLong:
    def __reduce__(self):
        return (Plain, (), None, None, None, None, None)


class BadReduceNotCallable:
    def __reduce__(self):
        return (42, ())


class BadReduceArgsNotTuple:
    def __reduce__(self):
        return (Plain, [1, 2])


class ReduceRaises:
    def __reduce__(self):
        raise ValueError("refusing to be pickled")


class ReduceToMissingGlobal:
    def __reduce__(self):
        return "NO_SUCH_GLOBAL_IN_CORPUS"


class GetStateRaises:
    def __getstate__(self):
        raise LookupError("no state for you")


class CustomError(Exception):
    def __init__(self, code, msg):
        super().__init__(code, msg)
        self.code = code


def module_function(x=1):
    return x


def module_generator():
    yield 1


MODULE_LAMBDA = lambda: None  # noqa: E731 - a lambda is the point: the stdlib refuses it


def _local_lambda():
    return lambda: None


def _local_class_instance():
    class Local:
        pass

    return Local()


class HasMethod:
    def method(self):
        return 1

    @classmethod
    def cmethod(cls):
        return 2

    @staticmethod
    def smethod():
        return 3


HAS_METHOD = HasMethod()


# --------------------------------------------------------------------------------------
# The corpus
# --------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------
# Cycles through immutable containers, built fresh: no reference from outside the graph
# --------------------------------------------------------------------------------------


def _cycle_frozenset_instance():
    inst = Plain()
    wrapper = frozenset([inst])
    inst.back = wrapper
    return wrapper


def _cycle_tuple_list():
    inner = []
    wrapper = (inner, "x")
    inner.append(wrapper)
    return wrapper


def _cycle_tuple_instance():
    inst = Plain()
    wrapper = (1, inst)
    inst.back = wrapper
    return wrapper


def _cycle_tuple_dict():
    inner = {}
    wrapper = (inner,)
    inner["back"] = wrapper
    return wrapper


def _cycle_nested_immutables():
    inst = Plain()
    wrapper = (frozenset([inst]), (inst,))
    inst.back = wrapper
    return [wrapper]


def _cycle_instance_root():
    inst = Plain()
    inst.items = (frozenset([inst]), [inst])
    return inst


def _cycle_set_of_tuples():
    inst = Plain()
    inst.members = {(inst,), (1, (inst,))}
    return inst.members


CYCLE_BUILDERS = {
    "frozenset-instance": _cycle_frozenset_instance,
    "tuple-list": _cycle_tuple_list,
    "tuple-instance": _cycle_tuple_instance,
    "tuple-dict": _cycle_tuple_dict,
    "nested-immutables": _cycle_nested_immutables,
    "instance-root": _cycle_instance_root,
    "set-of-tuples": _cycle_set_of_tuples,
}


def _int_entries():
    values = {
        "0": 0,
        "1": 1,
        "-1": -1,
        "255": 255,
        "-255": -255,
        "256": 256,
        "-256": -256,
        "65535": 65535,
        "65536": 65536,
        "2**31": 2**31,
        "-2**31": -(2**31),
        "2**31-1": 2**31 - 1,
        "2**31+1": 2**31 + 1,
        "-2**31-1": -(2**31) - 1,
        "-2**31+1": -(2**31) + 1,
        "2**63": 2**63,
        "-2**63": -(2**63),
        "2**63-1": 2**63 - 1,
        "2**64": 2**64,
        "-2**64": -(2**64),
        "2**1000": 2**1000,
        "-2**1000": -(2**1000),
    }
    # LONG1/LONG4 sign-byte edges: -(2**(8k-1)) fits in k bytes, 2**(8k-1) needs k+1.
    for k in (1, 2, 3, 4, 7, 8, 9, 16, 254, 255, 256):
        values[f"-2**(8*{k}-1)"] = -(2 ** (8 * k - 1))
        values[f"-2**(8*{k}-1)-1"] = -(2 ** (8 * k - 1)) - 1
        values[f"2**(8*{k}-1)"] = 2 ** (8 * k - 1)
        values[f"2**(8*{k}-1)-1"] = 2 ** (8 * k - 1) - 1
    values["2**(8*70000)"] = 2 ** (8 * 70000)  # a LONG4 payload larger than a frame
    values["-2**(8*70000)+1"] = -(2 ** (8 * 70000)) + 1
    return [(f"int:{k}", v) for k, v in values.items()]


def _float_entries():
    values = {
        "0.0": 0.0,
        "-0.0": -0.0,
        "nan": math.nan,
        "-nan": -math.nan,
        "inf": math.inf,
        "-inf": -math.inf,
        "1e308": 1e308,
        "5e-324": 5e-324,
        "1/3": 1 / 3,
        "-1.5": -1.5,
        "2**53+1": float(2**53 + 1),
        "1e-310": 1e-310,
        "1e16": 1e16,
        "123456789.125": 123456789.125,
    }
    return [(f"float:{k}", v) for k, v in values.items()]


def _str_entries():
    values = {
        "empty": "",
        "ascii": "hello world",
        "latin1": "caf\xe9 \xff\xa0",
        "bmp": "\u20ac \u4e2d\u6587 \uffff",
        "astral": "\U0001f600\U00010000\U0010ffff",
        "lone-high-surrogate": "\ud800",
        "lone-low-surrogate": "\udfff",
        "embedded-surrogate": "a\ud800b\udc00c",
        "backslash": "back\\slash \\u0041",
        "newline": "new\nline",
        "cr": "carriage\rreturn",
        "nul": "nul\0byte",
        "ctrl-z": "sub\x1achar",
        "all-escapes": "\\\n\r\0\x1a\t\x7f\x80\u0100",
        "len255": "s" * 255,
        "len256": "s" * 256,
        "len65535": "s" * 65535,
        "len65536": "s" * 65536,
        "len70000": "s" * 70000,
        "utf8-254-bytes": "\xe9" * 127,
        "utf8-256-bytes": "\xe9" * 128,
        "utf8-80000-bytes": "\xe9" * 40000,
    }
    return [(f"str:{k}", v) for k, v in values.items()]


def _bytes_entries():
    values = {
        "empty": b"",
        "len1": b"\x00",
        "len255": b"b" * 255,
        "len256": b"b" * 256,
        "all-bytes": bytes(range(256)),
        "len65535": b"b" * 65535,
        "len65536": b"b" * 65536,
        "len70000": b"b" * 70000,
        "len300000": bytes(range(256)) * 1172,
    }
    entries = [(f"bytes:{k}", v) for k, v in values.items()]
    entries += [
        ("bytearray:empty", bytearray()),
        ("bytearray:small", bytearray(b"abc\x00\xff")),
        ("bytearray:len70000", bytearray(b"a" * 70000)),
    ]
    return entries


def _container_entries():
    entries = [
        ("tuple:0", ()),
        ("tuple:1", (1,)),
        ("tuple:2", (1, "two")),
        ("tuple:3", (1, 2.0, "three")),
        ("tuple:4", (1, 2, 3, 4)),
        ("tuple:5", (1, 2, 3, 4, 5)),
        ("tuple:nested", ((), ((),), (((),),), (1, (2, (3, (4, (5,))))))),
        ("tuple:of-lists", ([1], [2, [3]], {"k": [4]})),
        ("list:empty", []),
        ("list:small", [1, "a", None, 2.5, b"b"]),
        ("list:nested", [[], [[]], [[[]]], [1, [2, [3]]]]),
        ("dict:empty", {}),
        ("dict:small", {"a": 1, "b": [2], "c": {"d": None}}),
        (
            "dict:mixed-keys",
            {1: "a", "b": 2, (1, 2): None, None: 3, 1.5: 4, b"x": 5, frozenset([1]): 6},
        ),
        ("set:empty", set()),
        ("set:small", {1, 2, 3}),
        ("set:strings", {"alpha", "beta", "gamma", "delta"}),
        ("set:tuples", {(1, 2), (3, 4), ("a", (5,))}),
        ("frozenset:empty", frozenset()),
        ("frozenset:small", frozenset({1, "a", (2, 3)})),
        ("frozenset:nested", frozenset({frozenset({1}), frozenset()})),
        ("dict:frozenset-keys-1500", {frozenset({i, -i}): i for i in range(1500)}),
        ("nested:empties", [[[[[]]]], ((((),),),), {1: {2: {3: {}}}}, [set(), frozenset()]]),
    ]
    for n in (999, 1000, 1001, 2500):
        entries += [
            (f"list:ints-{n}", list(range(n))),
            (f"list:strs-{n}", [f"s{i}" for i in range(n)]),
            (f"dict:{n}", {i: str(i) for i in range(n)}),
            (f"set:{n}", set(range(n))),
            (f"frozenset:{n}", frozenset(range(n))),
            (f"tuple:{n}", tuple(range(n))),
        ]
    return entries


def _sharing_entries():
    shared_list = [1, 2]
    shared_dict = {"k": "v"}
    shared_str = "".join(["shared", "-", "string"])
    shared_bytes = b"shared-bytes" * 3
    shared_tuple = (1, [2])
    shared_inst = Plain(tag="shared")

    self_list = []
    self_list.append(self_list)

    self_dict = {}
    self_dict["self"] = self_dict

    rec_tuple = ([],)
    rec_tuple[0].append(rec_tuple)

    rec_tuple_long = ([], 1, 2, 3, 4)
    rec_tuple_long[0].append(rec_tuple_long)

    rec_tuple_deep = ([[]],)
    rec_tuple_deep[0][0].append(rec_tuple_deep)

    a, b = [], []
    a.append(b)
    b.append(a)

    self_inst = Plain()
    self_inst.me = self_inst

    frozen_owner = Plain()
    frozen_cycle = frozenset([frozen_owner])
    frozen_owner.fs = frozen_cycle

    rec_list_sub = ListSub()
    rec_list_sub.append(rec_list_sub)
    rec_list_sub.attr = rec_list_sub

    rec_dict_sub = DictSub()
    rec_dict_sub["me"] = rec_dict_sub

    dict_in_list = [{}]
    dict_in_list[0]["list"] = dict_in_list

    return [
        ("shared:list-twice", [shared_list, shared_list]),
        ("shared:list-in-dict", {"x": shared_list, "y": shared_list, "z": [shared_list]}),
        ("shared:list-in-tuple", (shared_list, shared_list)),
        ("shared:dict", [shared_dict, {"again": shared_dict}]),
        ("shared:str", [shared_str, shared_str, (shared_str,)]),
        ("shared:bytes", [shared_bytes, shared_bytes]),
        ("shared:tuple", [shared_tuple, shared_tuple]),
        ("shared:instance", [shared_inst, shared_inst, {"i": shared_inst}]),
        ("shared:many-strs", [f"v{i % 300}" for i in range(3000)]),
        ("shared:large-bytes", [b"L" * 70000] * 3),
        ("shared:large-str", ["L" * 70000] * 3),
        ("shared:large-int", [2 ** (8 * 40000)] * 3),
        ("cycle:list-self", self_list),
        ("cycle:dict-self", self_dict),
        ("cycle:tuple-via-list", rec_tuple),
        ("cycle:tuple5-via-list", rec_tuple_long),
        ("cycle:tuple-via-nested-list", rec_tuple_deep),
        ("cycle:two-lists", a),
        ("cycle:instance-self", self_inst),
        ("cycle:frozenset-via-instance", frozen_cycle),
        ("cycle:list-subclass", rec_list_sub),
        ("cycle:dict-subclass", rec_dict_sub),
        ("cycle:dict-in-list", dict_in_list),
    ]


def _class_entries():
    dict_sub = DictSub(a=1, b=[2])
    dict_sub.attr = "dict-subclass attribute"
    list_sub = ListSub([1, 2, 3])
    list_sub.attr = {"x": 1}
    return [
        ("obj:plain", Plain(a=1, b="two", c=[3.0])),
        ("obj:empty", Empty()),
        ("obj:slots", Slotted(1, [2])),
        ("obj:slots-partial", Slotted("only-a")),
        ("obj:slots-and-dict", SlottedWithDict(1, extra="x")),
        ("obj:reduce-string", REDUCES_TO_STRING),
        ("obj:reduce-2", Reduce2(1, [2])),
        ("obj:reduce-3-setstate", Reduce3("x")),
        ("obj:reduce-3-dict-state", Reduce3NoSetstate(42)),
        ("obj:reduce-3-slot-state", Reduce3SlotState("slot")),
        ("obj:reduce-4-listitems", Bag([1, "a", (2,)])),
        ("obj:reduce-4-listitems-1001", Bag(range(1001))),
        ("obj:reduce-4-listitems-2500", Bag(range(2500))),
        ("obj:reduce-5-dictitems", Table(a=1, b=2)),
        ("obj:reduce-5-dictitems-1001", Table((i, i) for i in range(1001))),
        ("obj:reduce-6-state-setter", Reduce6([1, 2])),
        ("obj:reduce-5-state-and-listitems", StatefulBag([1, [2]], tag="bag")),
        ("obj:reduce-5-state-and-dictitems", StatefulTable({"a": 1}, tag="table")),
        ("obj:reduce-ex-by-protocol", ReduceExByProtocol("t")),
        ("obj:getnewargs", NewArgs(1, "b")),
        ("obj:getnewargs-ex", NewArgsEx(1, key="k")),
        ("obj:getnewargs-ex-no-kwargs", NewArgsExNoKwargs([1])),
        ("obj:getstate-setstate", GetSetState(1, {"b": 2})),
        ("obj:getstate-none", GetStateNone()),
        ("obj:getstate-empty-dict", GetStateFalsyDict()),
        ("obj:int-subclass", IntSub(7)),
        ("obj:float-subclass", FloatSub(-0.5)),
        ("obj:str-subclass", StrSub("sub")),
        ("obj:bytes-subclass", BytesSub(b"sub")),
        ("obj:tuple-subclass", TupleSub((1, 2))),
        ("obj:list-subclass-with-attr", list_sub),
        ("obj:dict-subclass-with-attr", dict_sub),
        ("obj:set-subclass", SetSub({1, 2})),
        ("obj:frozenset-subclass", FrozenSetSub({1, 2})),
        ("obj:complex-subclass", ComplexSub(1, 2)),
        ("obj:copyreg-registered", Registered([1, 2])),
        ("obj:ext-1-byte-class", ExtOne),
        ("obj:ext-2-byte-class", ExtTwo),
        ("obj:ext-4-byte-class", ExtFour),
        ("obj:ext-instances", [ExtOne(), ExtTwo(), ExtFour(), ExtOne]),
        ("obj:exception", ValueError("bad value", 3)),
        ("obj:exception-custom", CustomError(5, "msg")),
        ("obj:key-error", KeyError("k")),
        ("obj:reduce-dotted-string", Outer.NESTED_SINGLETON),
        ("obj:class-with-reducing-metaclass", WithReducingMeta),
        ("obj:reduce-args-tuple-subclass", ReduceArgsTupleSubclass()),
        ("obj:reduce-returns-namedtuple", ReduceNamedTuple()),
        ("obj:reduce-via-classmethod", ViaClassmethod([1])),
        ("obj:nested-class", Outer.Inner),
        ("obj:nested-class-2", Outer.Inner.Deepest),
        ("obj:nested-class-instance", Outer.Inner(v=[1])),
        ("obj:nested-class-deepest-instance", Outer.Inner.Deepest()),
        ("obj:object", object()),
        ("func:module-function", module_function),
        ("func:builtin-len", len),
        ("func:builtin-max", max),
        ("func:math-log", math.log),
        ("func:bound-method", HAS_METHOD.method),
        ("func:classmethod", HasMethod.cmethod),
        ("func:staticmethod", HasMethod.smethod),
        ("func:builtin-bound-method", [1, 2].append),
        ("func:method-descriptor", str.upper),
        ("func:partial", functools.partial(max, 1, default=0)),
        ("class:int", int),
        ("class:object", object),
        ("class:type", type),
        ("class:NoneType", type(None)),
        ("class:ellipsis", type(Ellipsis)),
        ("class:NotImplementedType", type(NotImplemented)),
        ("class:user", Plain),
        ("class:exception", ValueError),
        ("const:None", None),
        ("const:True", True),
        ("const:False", False),
        ("const:Ellipsis", Ellipsis),
        ("const:NotImplemented", NotImplemented),
        ("const:bools", [True, False, True]),
    ]


def _stdlib_entries():
    ist = datetime.timezone(datetime.timedelta(hours=5, minutes=30), "IST")
    return [
        ("datetime:date", datetime.date(2024, 2, 29)),
        ("datetime:date-min", datetime.date.min),
        ("datetime:time", datetime.time(12, 30, 45, 123456)),
        ("datetime:time-tz", datetime.time(1, 2, 3, tzinfo=ist)),
        ("datetime:datetime", datetime.datetime(2001, 2, 3, 4, 5, 6, 7)),
        ("datetime:datetime-utc", datetime.datetime(2001, 2, 3, tzinfo=datetime.timezone.utc)),
        ("datetime:datetime-tz", datetime.datetime(1999, 12, 31, 23, 59, 59, tzinfo=ist)),
        ("datetime:datetime-fold", datetime.datetime(2021, 11, 7, 1, 30, fold=1)),
        ("datetime:timedelta", datetime.timedelta(days=-1, seconds=5, microseconds=7)),
        ("datetime:timedelta-max", datetime.timedelta.max),
        ("datetime:timezone-utc", datetime.timezone.utc),
        ("datetime:timezone-offset", datetime.timezone(datetime.timedelta(hours=-3))),
        ("datetime:timezone-named", ist),
        ("decimal:1.10", decimal.Decimal("1.10")),
        ("decimal:-0", decimal.Decimal("-0")),
        ("decimal:nan", decimal.Decimal("nan")),
        ("decimal:snan", decimal.Decimal("sNaN")),
        ("decimal:inf", decimal.Decimal("-Infinity")),
        ("decimal:tiny", decimal.Decimal("1e-999999")),
        ("fraction:1/3", fractions.Fraction(1, 3)),
        ("fraction:-7/2", fractions.Fraction(-7, 2)),
        ("complex:1+2j", 1 + 2j),
        ("complex:-0j", complex(-0.0, -0.0)),
        ("complex:nan-inf", complex(math.nan, math.inf)),
        ("range:empty", range(0)),
        ("range:10", range(10)),
        ("range:stepped", range(-5, 100, 7)),
        ("range:huge", range(2**70)),
        ("slice:full", slice(1, 10, 2)),
        ("slice:none", slice(None)),
        ("collections:OrderedDict", collections.OrderedDict([("b", 1), ("a", [2])])),
        ("collections:defaultdict-list", collections.defaultdict(list, {"a": [1]})),
        ("collections:defaultdict-int", collections.defaultdict(int, {1: 2})),
        ("collections:deque", collections.deque([1, "2", (3,)])),
        ("collections:deque-maxlen", collections.deque([1, 2], maxlen=5)),
        ("collections:Counter", collections.Counter("abracadabra")),
        ("collections:namedtuple", Point(1, y=[2])),
        ("collections:ChainMap", collections.ChainMap({"a": 1}, {"b": 2})),
        ("enum:Enum", Color.RED),
        ("enum:Enum-str-value", Color.GREEN),
        ("enum:IntEnum", Level.HIGH),
        ("enum:Flag", Perm.R),
        ("enum:Flag-combined", Perm.R | Perm.W),
        ("enum:class", Color),
        ("uuid:UUID", uuid.UUID("12345678-1234-5678-1234-567812345678")),
        ("pathlib:PurePosixPath", pathlib.PurePosixPath("/a/b/c.txt")),
        ("pathlib:PureWindowsPath", pathlib.PureWindowsPath("c:/x/y")),
        ("pathlib:Path", pathlib.Path("/tmp/anypickle")),
        ("re:pattern", re.compile(r"a+(b|c)?\d", re.IGNORECASE)),
        ("re:bytes-pattern", re.compile(rb"\x00+")),
        ("types:SimpleNamespace", types.SimpleNamespace(a=1, b=[2])),
        ("array:int", array.array("i", [1, -2, 3])),
        ("array:double", array.array("d", [1.5, math.inf])),
    ]


def _fix_imports_entries():
    """Globals that protocols 0-2 rename for Python 2 (fix_imports=True)."""
    import configparser
    import itertools
    import queue
    import socketserver

    return [
        ("fix-imports:range", range),
        ("fix-imports:str", str),
        ("fix-imports:zip", zip),
        ("fix-imports:functools.reduce", functools.reduce),
        ("fix-imports:sys.intern", sys.intern),
        ("fix-imports:itertools.filterfalse", itertools.filterfalse),
        ("fix-imports:collections.UserDict", collections.UserDict),
        ("fix-imports:OSError", OSError),
        ("fix-imports:ConnectionError", ConnectionError),
        ("fix-imports:queue.Queue", queue.Queue),
        ("fix-imports:socketserver.TCPServer", socketserver.TCPServer),
        ("fix-imports:configparser", configparser.ConfigParser),
        ("fix-imports:copyreg._reconstructor", copyreg._reconstructor),
        ("fix-imports:exception-instance", ConnectionError(1, "refused")),
        ("fix-imports:UserDict-instance", collections.UserDict(a=1)),
    ]


def _picklebuffer_entries():
    shared_readonly = pickle.PickleBuffer(b"shared-readonly")
    shared_writable = pickle.PickleBuffer(bytearray(b"shared-writable"))
    return [
        (
            "picklebuffer:shared",
            [shared_readonly, shared_readonly, shared_writable, shared_writable],
        ),
        ("picklebuffer:bytes", pickle.PickleBuffer(b"readonly buffer")),
        ("picklebuffer:bytearray", pickle.PickleBuffer(bytearray(b"writable buffer"))),
        ("picklebuffer:large", pickle.PickleBuffer(b"L" * 70000)),
        ("picklebuffer:empty", pickle.PickleBuffer(b"")),
        ("picklebuffer:in-list", [pickle.PickleBuffer(b"one"), pickle.PickleBuffer(b"two")]),
    ]


def numpy_entries():
    """numpy arrays (empty when numpy is not importable)."""
    if numpy is None:
        return []
    np = numpy
    obj_array = np.empty(4, dtype=object)
    obj_array[:] = [1, "a", None, [1, 2]]
    structured = np.zeros(3, dtype=[("a", "<i4"), ("b", "<f8"), ("c", "S3")])
    structured["a"] = [1, 2, 3]
    structured["c"] = [b"x", b"yy", b"zzz"]
    return [
        ("numpy:int64", np.arange(10, dtype=np.int64)),
        ("numpy:float", np.array([1.5, np.nan, -0.0, np.inf])),
        ("numpy:bool", np.array([True, False])),
        ("numpy:object", obj_array),
        ("numpy:0-d", np.array(3.25)),
        ("numpy:fortran", np.asfortranarray(np.arange(6, dtype=np.int32).reshape(2, 3))),
        ("numpy:2d-c", np.arange(12, dtype=np.uint8).reshape(3, 4)),
        ("numpy:non-contiguous", np.arange(20, dtype=np.int16)[::3]),
        ("numpy:structured", structured),
        ("numpy:large", np.arange(20000, dtype=np.float64)),
        ("numpy:scalar", np.float32(1.25)),
        ("numpy:dtype", np.dtype("<u2")),
    ]


def _unpicklable_entries():
    def gen():
        yield 1

    return [
        ("unpicklable:lock", threading.Lock()),
        ("unpicklable:generator", gen()),
        ("unpicklable:module-generator", module_generator()),
        ("unpicklable:memoryview", memoryview(b"abc")),
        ("unpicklable:nested-lock", [1, {"k": (2, threading.Lock())}]),
        ("unpicklable:lock-after-1000", [*range(1000), threading.Lock()]),
        ("unpicklable:reduce-not-tuple", BadReduceNotTuple()),
        ("unpicklable:reduce-list", BadReduceList()),
        ("unpicklable:reduce-too-short", BadReduceTooShort()),
        ("unpicklable:reduce-too-long", BadReduceTooLong()),
        ("unpicklable:reduce-not-callable", BadReduceNotCallable()),
        ("unpicklable:reduce-args-not-tuple", BadReduceArgsNotTuple()),
        ("unpicklable:reduce-raises", ReduceRaises()),
        ("unpicklable:reduce-missing-global", ReduceToMissingGlobal()),
        ("unpicklable:getstate-raises", GetStateRaises()),
    ]


#: Ids of entries the stdlib refuses (or pickles by a name that does not lead
#: back to them) and anypickle pickles by value; see ``by_value_equivalent``.
BY_VALUE_PREFIX = "byvalue:"


def _by_value_entries():
    return [
        ("byvalue:module-is-none", function_without_module),
        ("byvalue:local-lambda", _local_lambda()),
        ("byvalue:module-lambda", MODULE_LAMBDA),
        ("byvalue:local-class-instance", _local_class_instance()),
        ("byvalue:module", sys),
        ("byvalue:code-object", module_function.__code__),
        ("byvalue:module-in-namespace", [{1, 2}, frozenset({3}), types.SimpleNamespace(x=sys)]),
    ]


def by_value_equivalent(original, loaded):
    """Assert that ``loaded`` (a by-value round trip of ``original``) behaves alike."""
    if isinstance(original, types.FunctionType):
        assert type(loaded) is types.FunctionType
        assert loaded is not original  # rebuilt from its code, never looked up
        assert (loaded.__name__, loaded.__qualname__) == (original.__name__, original.__qualname__)
        assert loaded.__code__ == original.__code__
        assert loaded() == original()
    elif isinstance(original, types.CodeType):
        assert loaded == original
        assert loaded.co_code == original.co_code
    elif isinstance(original, types.ModuleType):
        assert loaded is original
    elif isinstance(original, list):
        assert loaded[:2] == original[:2]
        assert loaded[2].x is original[2].x
    else:
        # In the pickling process, the class id leads back to the live class.
        assert type(loaded) is type(original)
        assert vars(loaded) == vars(original)


def corpus():
    """Return the list of ``(id, obj)`` pairs; ids are unique."""
    entries = (
        _int_entries()
        + _float_entries()
        + _str_entries()
        + _bytes_entries()
        + _container_entries()
        + _sharing_entries()
        + _class_entries()
        + _stdlib_entries()
        + _fix_imports_entries()
        + _picklebuffer_entries()
        + numpy_entries()
        + _unpicklable_entries()
        + _by_value_entries()
    )
    ids = [entry_id for entry_id, _ in entries]
    duplicates = {i for i in ids if ids.count(i) > 1}
    assert not duplicates, f"duplicate corpus ids: {sorted(duplicates)}"
    return entries
