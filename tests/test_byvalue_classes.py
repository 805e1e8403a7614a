"""Classes pickled by value (issue #4): local, __main__ and run-time classes,
metaclasses, __slots__, definition-time hooks, ABCs, enums, dataclasses, named
tuples, TypedDict, generics and type variables, PEP 695 aliases, and instances
of all of them.

Each test defines its classes as the ``__main__`` of one child interpreter,
pickles them with ``anypickle.dumps`` and loads them with the stdlib's
``pickle.loads`` in another child, where they do not exist.
"""

from __future__ import annotations

import sys

import pytest
from byvalue_support import (
    dumps_in_fresh_process,
    load_in_fresh_process,
    roundtrip_in_fresh_processes,
)

PROTOS = [pytest.param(p, id=f"proto{p}") for p in (2, 5)]


@pytest.mark.parametrize("proto", [pytest.param(p, id=f"proto{p}") for p in (0, 1, 2, 3, 4, 5)])
def test_local_class_and_instances(proto):
    define = """
        def make():
            class Point:
                "A point."
                dims = 2
                def __init__(self, x, y):
                    self.x, self.y = x, y
                def norm2(self):
                    return self.x ** 2 + self.y ** 2
                def __eq__(self, other):
                    return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)
                def __hash__(self):
                    return hash((self.x, self.y))
                def __repr__(self):
                    return f"Point({self.x}, {self.y})"
            return Point

        Point = make()
        p = Point(3, 4)
    """
    check = """
        cls, p, pair = obj
        assert type(p) is cls and isinstance(p, cls)
        assert pair[0] is pair[1] is p
        assert (p.x, p.y) == (3, 4) and p.__dict__ == {"x": 3, "y": 4}
        assert p.norm2() == 25
        assert cls.__qualname__ == "make.<locals>.Point"
        assert cls.__name__ == "Point"
        assert cls.__module__ == "__main__"
        assert cls.__doc__ == "A point."
        assert cls.dims == 2
        assert cls(3, 4) == p, "the closure cell naming the class must hold the loaded class"
        assert cls(1, 2) != p
        assert repr(cls(1, 2)) == "Point(1, 2)"
        assert len({p, cls(3, 4)}) == 1
        assert cls.__bases__ == (object,)
        assert not hasattr(sys.modules["__main__"], "Point")
    """
    roundtrip_in_fresh_processes(define, "(Point, p, [p, p])", check, proto)


@pytest.mark.parametrize("proto", PROTOS)
def test_main_classes_inheritance_and_builtin_bases(proto):
    define = """
        class Config(dict):
            def get_int(self, key):
                return int(self[key])

        class Tagged(str):
            def __new__(cls, text, tag):
                self = super().__new__(cls, text)
                self.tag = tag
                return self
            def __getnewargs__(self):
                return (str(self), self.tag)

        class Base:
            greeting = "hello"
            def greet(self):
                return self.greeting + " " + self.name()

        class Derived(Base):
            def name(self):
                return "derived"
            def greet(self):
                return super().greet().upper()   # zero-argument super: the __class__ cell

        class MyError(ValueError):
            pass

        cfg = Config(a="3")
        cfg.note = "attr"
        tagged = Tagged("text", "t")
        err = MyError("bad", 7)
        err.detail = "more"
    """
    check = """
        Config, Tagged, Base, Derived, MyError, cfg, tagged, err = obj
        assert type(cfg) is Config and cfg == {"a": "3"} and cfg.get_int("a") == 3
        assert cfg.note == "attr"
        assert type(tagged) is Tagged and tagged == "text" and tagged.tag == "t"
        assert Tagged("x", 1).upper() == "X"
        assert Derived.__bases__ == (Base,)
        assert Derived.__mro__ == (Derived, Base, object)
        assert Derived().greet() == "HELLO DERIVED"
        assert Derived.__qualname__ == "Derived" and Derived.__module__ == "__main__"
        assert issubclass(MyError, ValueError)
        assert type(err) is MyError and err.args == ("bad", 7) and err.detail == "more"
        try:
            raise MyError("raised")
        except ValueError as exc:
            assert type(exc) is MyError
    """
    roundtrip_in_fresh_processes(
        define, "(Config, Tagged, Base, Derived, MyError, cfg, tagged, err)", check, proto
    )


@pytest.mark.parametrize("proto", PROTOS)
def test_classes_made_at_run_time(proto):
    define = """
        import types

        Dyn = type("Dyn", (object,), {"x": 1, "double": lambda self: self.x * 2})
        NC = types.new_class(
            "NC", (Dyn,), {},
            lambda ns: ns.update({"y": 5, "total": lambda self: self.x + self.y}),
        )
        namespace = {}
        exec("class FromExec:\\n    def hello(self):\\n        return 'exec'\\n", namespace)
        FromExec = namespace["FromExec"]

        WrongModule = type("WrongModule", (), {"__module__": "no.such.module", "v": 3})
        NoModule = type("NoModule", (), {"__module__": None, "v": 4})
        Renamed = type("Renamed", (), {"v": 5})
        Renamed.__qualname__ = "Some.Other.Name"

        instances = [Dyn(), NC(), FromExec(), WrongModule(), Renamed()]
        exec("def exec_fn(x):\\n    return ('exec_fn', x)\\n", namespace)
        exec_fn = namespace["exec_fn"]
        assert exec_fn.__module__ is None
    """
    check = """
        Dyn, NC, FromExec, WrongModule, NoModule, Renamed, instances, exec_fn = obj
        assert Dyn().double() == 2
        assert Dyn.__module__ == "__main__" and Dyn.__qualname__ == "Dyn"
        assert issubclass(NC, Dyn) and NC().total() == 6
        assert FromExec().hello() == "exec"
        assert FromExec.__module__ == "builtins"
        assert WrongModule.__module__ == "no.such.module" and WrongModule.v == 3
        assert NoModule.v == 4 and NoModule.__module__ is None
        assert Renamed.__qualname__ == "Some.Other.Name" and Renamed.__name__ == "Renamed"
        assert Renamed.v == 5
        assert [type(i) for i in instances] == [Dyn, NC, FromExec, WrongModule, Renamed]
        assert exec_fn(1) == ("exec_fn", 1) and exec_fn.__module__ is None
    """
    roundtrip_in_fresh_processes(
        define,
        "(Dyn, NC, FromExec, WrongModule, NoModule, Renamed, instances, exec_fn)",
        check,
        proto,
    )


@pytest.mark.parametrize("proto", PROTOS)
def test_metaclasses(proto):
    define = """
        def make():
            class Meta(type):
                def __new__(mcls, name, bases, ns, **kwargs):
                    cls = super().__new__(mcls, name, bases, ns)
                    cls.tag = kwargs.get("tag", "none")
                    return cls
                def describe(cls):
                    return f"{cls.__name__}:{cls.tag}"
                @property
                def shout(cls):
                    return cls.__name__.upper()

            class WithMeta(metaclass=Meta, tag="t1"):
                def hello(self):
                    return "hello"

            class Child(WithMeta):
                pass

            return Meta, WithMeta, Child

        Meta, WithMeta, Child = make()
        child = Child()
    """
    check = """
        Meta, WithMeta, Child, child = obj
        assert issubclass(Meta, type)
        assert type(WithMeta) is Meta and type(Child) is Meta
        assert WithMeta.describe() == "WithMeta:t1"
        assert Child.describe() == "Child:none"
        assert Child.shout == "CHILD"
        assert type(child) is Child and child.hello() == "hello"
        assert Meta.__qualname__ == "make.<locals>.Meta"
    """
    roundtrip_in_fresh_processes(define, "(Meta, WithMeta, Child, child)", check, proto)


@pytest.mark.parametrize("proto", PROTOS)
def test_slots(proto):
    define = """
        def make():
            class Slotted:
                __slots__ = ("x", "y")
                def __init__(self, x, y=None):
                    self.x = x
                    if y is not None:
                        self.y = y
            class SlotChild(Slotted):
                __slots__ = ("z",)
            class SlotDict:
                __slots__ = ("a", "__dict__", "__weakref__")
            return Slotted, SlotChild, SlotDict

        Slotted, SlotChild, SlotDict = make()
        full = Slotted(1, 2)
        partial = Slotted(3)
        child = SlotChild(4, 5)
        child.z = 6
        sd = SlotDict()
        sd.a = 1
        sd.extra = 2
    """
    check = """
        import weakref

        Slotted, SlotChild, SlotDict, full, partial, child, sd = obj
        assert Slotted.__slots__ == ("x", "y")
        assert type(Slotted.__dict__["x"]).__name__ == "member_descriptor"
        assert not hasattr(Slotted(0), "__dict__")
        fresh = Slotted(0)
        try:
            fresh.other = 1
        except AttributeError:
            pass
        else:
            raise AssertionError("a __slots__ class accepted an undeclared attribute")
        fresh.y = 9
        assert (fresh.x, fresh.y) == (0, 9)
        assert (full.x, full.y) == (1, 2)
        assert partial.x == 3 and not hasattr(partial, "y")
        assert type(child) is SlotChild and (child.x, child.y, child.z) == (4, 5, 6)
        assert SlotChild.__slots__ == ("z",)
        assert sd.a == 1 and sd.extra == 2 and sd.__dict__ == {"extra": 2}
        assert weakref.ref(sd)() is sd
    """
    roundtrip_in_fresh_processes(
        define, "(Slotted, SlotChild, SlotDict, full, partial, child, sd)", check, proto
    )


@pytest.mark.parametrize("proto", PROTOS)
def test_init_subclass_registers_loaded_class(proto):
    # PluginBase (importable) records its subclasses in the process that creates them.
    define = """
        from byvalue_support import PluginBase

        def make():
            class Alpha(PluginBase):
                kind = "alpha"
                def run(self):
                    return "alpha ran"
            class Beta(Alpha):
                kind = "beta"
            return Alpha, Beta

        Alpha, Beta = make()
        assert PluginBase.registry == [Alpha, Beta]
    """
    check = """
        import byvalue_support

        Alpha, Beta = obj
        registry = byvalue_support.PluginBase.registry
        assert registry == [Alpha, Beta], registry
        assert Alpha().run() == "alpha ran"
        # Loading again must not create (and register) another class.
        again = load(data)
        assert again[0] is Alpha and again[1] is Beta
        assert registry == [Alpha, Beta], registry
    """
    roundtrip_in_fresh_processes(define, "(Alpha, Beta)", check, proto)


@pytest.mark.parametrize("proto", PROTOS)
def test_init_subclass_sees_the_class_body(proto):
    # At definition time __init_subclass__ sees the class's own attributes.
    define = """
        from byvalue_support import PluginBase

        def make():
            class Alpha(PluginBase):
                kind = "alpha"
            class Beta(Alpha):
                kind = "beta"
            return Alpha, Beta

        Alpha, Beta = make()
        assert PluginBase.by_kind == {"alpha": Alpha, "beta": Beta}
    """
    check = """
        import byvalue_support

        Alpha, Beta = obj
        by_kind = byvalue_support.PluginBase.by_kind
        assert by_kind == {"alpha": Alpha, "beta": Beta}, by_kind
    """
    roundtrip_in_fresh_processes(define, "(Alpha, Beta)", check, proto)


@pytest.mark.parametrize("proto", PROTOS)
def test_set_name(proto):
    define = """
        from byvalue_support import Field

        def make():
            class Model:
                title = Field("untitled")
                size = Field(0)
            return Model

        Model = make()
        m = Model()
        m.title = "set"
    """
    check = """
        import byvalue_support

        Model, m = obj
        assert Model.__dict__["title"].name == "title"
        assert Model.__dict__["size"].name == "size"
        assert m.title == "set" and m.size == 0
        fresh = Model()
        assert fresh.title == "untitled"
        fresh.size = 3
        assert fresh.__dict__ == {"size": 3}
        calls = byvalue_support.Field.calls
        assert (Model, "title") in calls and (Model, "size") in calls, calls
        assert len(calls) == 2, calls
    """
    roundtrip_in_fresh_processes(define, "(Model, m)", check, proto)


@pytest.mark.parametrize("proto", PROTOS)
def test_class_attributes_referring_to_the_class_and_nested_classes(proto):
    define = """
        def make():
            class A:
                class Inner:
                    def where(self):
                        return "inner"
                def clone(self):
                    return type(self)()
            A.me = A
            A.items = [A, A.Inner]
            A.table = {"self": A}
            return A

        A = make()
        a = A()
        a.cls = A
    """
    check = """
        A, a = obj
        assert A.me is A
        assert A.items[0] is A and A.items[1] is A.Inner
        assert A.table["self"] is A
        assert A.Inner.__qualname__ == "make.<locals>.A.Inner"
        assert A.Inner().where() == "inner"
        assert type(a) is A and a.cls is A
        assert type(a.clone()) is A
    """
    roundtrip_in_fresh_processes(define, "(A, a)", check, proto)


@pytest.mark.parametrize("proto", PROTOS)
def test_class_attributes_holding_instances_of_the_class(proto):
    define = """
        def make():
            class P:
                def __init__(self, v):
                    self.v = v
                def __eq__(self, other):
                    return type(other) is P and other.v == self.v
                def __hash__(self):
                    return hash(("P", self.v))
            P.ORIGIN = P(0)
            P.CORNERS = {P(1), P(2)}
            P.BY_NAME = {P(3): "three"}
            return P

        P = make()
    """
    check = """
        P = obj
        assert type(P.ORIGIN) is P and P.ORIGIN == P(0)
        assert P.CORNERS == {P(1), P(2)} and P(1) in P.CORNERS
        assert all(type(c) is P for c in P.CORNERS)
        assert P.BY_NAME[P(3)] == "three"
    """
    roundtrip_in_fresh_processes(define, "P", check, proto)


@pytest.mark.parametrize("proto", PROTOS)
def test_main_classes_and_functions_referring_to_each_other_through_globals(proto):
    define = """
        class Vec:
            def __init__(self, x):
                self.x = x
            def __add__(self, other):
                return Vec(self.x + other.x)      # the class through the globals
            def child(self):
                return make_node(self.x + 1)

        class Node(Vec):
            pass

        def make_node(x):
            return Node(x)

        v = Vec(1)
    """
    check = """
        Vec, v, make_node = obj
        w = v + v
        assert type(w) is Vec and w.x == 2
        n = v.child()
        Node = type(n)
        assert Node.__bases__ == (Vec,) and n.x == 2
        assert make_node(5).x == 5 and type(make_node(5)) is Node
        assert Vec.__add__.__globals__ is make_node.__globals__
        assert make_node.__globals__["Node"] is Node
        assert make_node.__globals__["Vec"] is Vec
    """
    roundtrip_in_fresh_processes(define, "(Vec, v, make_node)", check, proto)


@pytest.mark.parametrize("proto", PROTOS)
def test_abc_with_registered_subclasses(proto):
    define = """
        import abc

        def make():
            class Shape(abc.ABC):
                @abc.abstractmethod
                def area(self):
                    ...
            class Circle:
                def area(self):
                    return 3
            Shape.register(Circle)
            Shape.register(int)
            class Real(Shape):
                def area(self):
                    return 1
            return Shape, Circle, Real

        Shape, Circle, Real = make()
    """
    check = """
        import abc

        Shape, Circle, Real = obj
        assert isinstance(Shape, abc.ABCMeta)
        assert issubclass(Circle, Shape) and isinstance(Circle(), Shape)
        assert issubclass(int, Shape) and isinstance(5, Shape)
        assert not issubclass(str, Shape)
        assert issubclass(Real, Shape) and Real().area() == 1
        assert Circle.__mro__ == (Circle, object)
        try:
            Shape()
        except TypeError:
            pass
        else:
            raise AssertionError("an abstract class could be instantiated")
        # Registering works on the loaded ABC.
        class Later:
            pass
        Shape.register(Later)
        assert issubclass(Later, Shape)
    """
    roundtrip_in_fresh_processes(define, "(Shape, Circle, Real)", check, proto)


@pytest.mark.parametrize("proto", PROTOS)
def test_enums(proto):
    define = """
        import enum

        def make():
            class Color(enum.Enum):
                RED = 1
                GREEN = 2
                def describe(self):
                    return f"{self.name}={self.value}"
            class Prio(enum.IntEnum):
                LOW = 1
                HIGH = 2
            class Perm(enum.Flag):
                R = 4
                W = 2
                X = 1
            return Color, Prio, Perm

        Color, Prio, Perm = make()
        Fun = enum.Enum("Fun", "RED GREEN")
    """
    exprs = [
        "(Color, Color.RED, Prio.HIGH, Perm.R | Perm.W, Perm, Fun, Fun.GREEN, [Color.GREEN] * 2)",
        "Color.GREEN",
        "Fun.RED",
        "Prio",
    ]
    datas = dumps_in_fresh_process(define, exprs, proto)
    check = """
        import enum

        Color, red, high, rw, Perm, Fun, fun_green, greens = obj
        assert issubclass(Color, enum.Enum) and Color.__qualname__ == "make.<locals>.Color"
        assert red is Color.RED and Color(1) is red and Color["RED"] is red
        assert greens[0] is greens[1] is Color.GREEN
        assert list(Color) == [Color.RED, Color.GREEN]
        assert red.describe() == "RED=1" and red.name == "RED" and red.value == 1
        assert type(red) is Color and isinstance(red, Color)

        Prio = type(high)
        assert issubclass(Prio, enum.IntEnum)
        assert Prio.HIGH is high and high == 2 and high > Prio.LOW
        assert isinstance(high, int)

        assert type(rw) is Perm
        assert rw == Perm.R | Perm.W and rw.value == 6
        assert Perm.R in rw and Perm.X not in rw

        assert Fun.GREEN is fun_green and fun_green.value == 2
        assert list(Fun.__members__) == ["RED", "GREEN"]
        assert Fun.__module__ == "__main__" and Fun.__qualname__ == "Fun"

        # Members and classes pickled by other dumps calls are the loaded ones.
        assert load(datas[1]) is Color.GREEN
        assert load(datas[2]) is Fun.RED
        assert load(datas[3]) is Prio
    """
    load_in_fresh_process(datas, check)


@pytest.mark.parametrize("proto", PROTOS)
def test_dataclasses(proto):
    define = """
        import dataclasses

        def make():
            @dataclasses.dataclass(order=True)
            class Item:
                name: str
                qty: int = 0
                tags: list = dataclasses.field(default_factory=list)
                def total(self, price):
                    return self.qty * price

            @dataclasses.dataclass(frozen=True)
            class Frozen:
                x: int
                y: int = 5

            return Item, Frozen

        Item, Frozen = make()
        it = Item("a", 2, ["t"])
        fz = Frozen(1)
    """
    check = """
        import dataclasses

        Item, Frozen, it, fz = obj
        assert dataclasses.is_dataclass(Item) and dataclasses.is_dataclass(it)
        assert type(it) is Item and it == Item("a", 2, ["t"])
        assert it.total(3) == 6
        fields = dataclasses.fields(Item)
        assert [f.name for f in fields] == ["name", "qty", "tags"]
        assert fields[0].default is dataclasses.MISSING
        assert fields[1].default == 0
        assert fields[2].default_factory is list
        default = Item("b")
        assert default.qty == 0 and default.tags == []
        assert Item("c").tags is not Item("c").tags
        assert Item("a", 1) < Item("b", 0)
        assert Item.__annotations__ == {"name": str, "qty": int, "tags": list}
        assert dataclasses.asdict(it) == {"name": "a", "qty": 2, "tags": ["t"]}
        assert dataclasses.replace(it, qty=5).qty == 5

        assert type(fz) is Frozen and fz == Frozen(1, 5)
        assert hash(fz) == hash(Frozen(1, 5))
        try:
            fz.x = 2
        except dataclasses.FrozenInstanceError:
            pass
        else:
            raise AssertionError("a frozen dataclass instance could be changed")
        assert repr(fz) == "make.<locals>.Frozen(x=1, y=5)"

        # The loaded dataclass can be subclassed by another dataclass in the loader.
        @dataclasses.dataclass(order=True)
        class Sub(Item):
            extra: int = 7

        sub = Sub("s", 1)
        assert (sub.name, sub.qty, sub.tags, sub.extra) == ("s", 1, [], 7)
        assert [f.name for f in dataclasses.fields(Sub)] == ["name", "qty", "tags", "extra"]
    """
    roundtrip_in_fresh_processes(define, "(Item, Frozen, it, fz)", check, proto)


@pytest.mark.parametrize("proto", PROTOS)
def test_namedtuples(proto):
    define = """
        import collections
        import typing

        def make():
            P = collections.namedtuple("P", "x y", defaults=[0])
            class NT(typing.NamedTuple):
                a: int
                b: str = "b"
                def both(self):
                    return f"{self.a}{self.b}"
            return P, NT

        LocalP, LocalNT = make()
        Top = collections.namedtuple("Top", ["u", "v"])
        values = [LocalP(1), LocalNT(2), Top(3, 4)]
    """
    check = """
        P, NT, Top, values = obj
        p, nt, top = values
        assert type(p) is P and p == (1, 0) and p.x == 1 and p.y == 0
        assert P._fields == ("x", "y") and P._field_defaults == {"y": 0}
        assert P._make([3, 4]) == (3, 4) and P(5).y == 0
        assert p._replace(x=9) == (9, 0)
        assert p._asdict() == {"x": 1, "y": 0}

        assert type(nt) is NT and nt == (2, "b") and nt.both() == "2b"
        assert NT(1).both() == "1b"
        assert NT._fields == ("a", "b")
        assert NT.__annotations__ == {"a": int, "b": str}
        assert NT.__qualname__ == "make.<locals>.NT"
        assert isinstance(nt, tuple)

        assert type(top) is Top and top.v == 4 and Top(u=1, v=2) == (1, 2)
    """
    roundtrip_in_fresh_processes(define, "(LocalP, LocalNT, Top, values)", check, proto)


@pytest.mark.parametrize("proto", PROTOS)
def test_typeddict(proto):
    define = """
        import typing

        def make():
            class Movie(typing.TypedDict):
                title: str
                year: int
            class Extra(Movie, total=False):
                rating: float
            return Movie, Extra

        Movie, Extra = make()
    """
    check = """
        import typing

        Movie, Extra = obj
        m = Movie(title="x", year=1)
        assert type(m) is dict and m == {"title": "x", "year": 1}
        assert typing.is_typeddict(Movie) and typing.is_typeddict(Extra)
        assert Movie.__annotations__ == {"title": str, "year": int}
        assert Movie.__required_keys__ == frozenset({"title", "year"})
        assert Movie.__total__ is True
        assert Extra.__total__ is False
        assert Extra.__optional_keys__ == frozenset({"rating"})
        assert Extra.__required_keys__ == frozenset({"title", "year"})
        assert Movie.__qualname__ == "make.<locals>.Movie"
        assert typing.get_type_hints(Extra) == {"title": str, "year": int, "rating": float}
    """
    roundtrip_in_fresh_processes(define, "(Movie, Extra)", check, proto)


@pytest.mark.parametrize("proto", PROTOS)
def test_generics_typevars_paramspec_newtype(proto):
    define = """
        import sys
        import typing

        T = typing.TypeVar("T")
        K = typing.TypeVar("K", bound=str)
        V = typing.TypeVar("V", int, float)
        T_co = typing.TypeVar("T_co", covariant=True)
        P = typing.ParamSpec("P")
        UserId = typing.NewType("UserId", int)
        Ts = typing.TypeVarTuple("Ts") if sys.version_info >= (3, 11) else None

        def make():
            class Box(typing.Generic[T]):
                def __init__(self, item: T):
                    self.item = item
                def get(self) -> T:
                    return self.item
            class IntBox(Box[int]):
                pass
            class Mapping2(typing.Generic[K, V]):
                pass
            return Box, IntBox, Mapping2

        Box, IntBox, Mapping2 = make()
        Alias = typing.Callable[P, T]
        box = Box("content")
    """
    expr = "(Box, IntBox, Mapping2, T, K, V, T_co, P, UserId, Ts, Alias, box)"
    check = """
        import sys
        import typing

        Box, IntBox, Mapping2, T, K, V, T_co, P, UserId, Ts, Alias, box = obj
        assert isinstance(T, typing.TypeVar) and T.__name__ == "T"
        assert Box.__parameters__ == (T,) and Box.__parameters__[0] is T
        assert Mapping2.__parameters__ == (K, V)
        assert K.__bound__ is str
        assert V.__constraints__ == (int, float)
        assert T_co.__covariant__ is True
        assert IntBox(3).get() == 3
        assert IntBox.__orig_bases__[0].__origin__ is Box
        assert typing.get_args(IntBox.__orig_bases__[0]) == (int,)
        assert typing.get_args(Box[str]) == (str,)
        assert type(box) is Box and box.get() == "content"
        assert Box.__qualname__ == "make.<locals>.Box"

        assert isinstance(P, typing.ParamSpec) and P.__name__ == "P"
        assert typing.get_args(Alias) == (P, T)

        assert UserId(5) == 5 and UserId.__name__ == "UserId"
        assert UserId.__supertype__ is int
        if sys.version_info >= (3, 11):
            assert isinstance(Ts, typing.TypeVarTuple) and Ts.__name__ == "Ts"
    """
    roundtrip_in_fresh_processes(define, expr, check, proto)


@pytest.mark.skipif(sys.version_info < (3, 12), reason="PEP 695 syntax needs Python 3.12")
@pytest.mark.parametrize("proto", PROTOS)
def test_pep695_classes_and_type_aliases(proto):
    define = """
        type Pair[T] = tuple[T, T]
        type IntList = list[int]

        class Stack[T]:
            def __init__(self) -> None:
                self.items: list[T] = []
            def push(self, x: T) -> None:
                self.items.append(x)

        def make():
            type Local = dict[str, int]
            class Holder[K: str, V]:
                def __init__(self, k: K, v: V):
                    self.k, self.v = k, v
            return Local, Holder

        Local, Holder = make()
        stack = Stack()
        stack.push(1)
    """
    check = """
        import typing

        Pair, IntList, Stack, Local, Holder, stack = obj
        assert isinstance(Pair, typing.TypeAliasType) and Pair.__name__ == "Pair"
        (t,) = Pair.__type_params__
        assert t.__name__ == "T"
        assert Pair.__value__ == tuple[t, t]
        assert Pair.__value__.__args__[0] is t
        assert IntList.__value__ == list[int]
        assert Local.__value__ == dict[str, int] and Local.__name__ == "Local"

        (st,) = Stack.__type_params__
        assert st.__name__ == "T"
        assert Stack.__parameters__ == (st,)
        s = Stack()
        s.push("x")
        assert s.items == ["x"]
        assert typing.get_args(Stack[int]) == (int,)
        assert type(stack) is Stack and stack.items == [1]

        k, v = Holder.__type_params__
        assert k.__bound__ is str and v.__name__ == "V"
        assert Holder.__qualname__ == "make.<locals>.Holder"
        h = Holder("a", 1)
        assert (h.k, h.v) == ("a", 1)
    """
    roundtrip_in_fresh_processes(
        define, "(Pair, IntList, Stack, Local, Holder, stack)", check, proto
    )


@pytest.mark.parametrize("proto", PROTOS)
def test_custom_pickling_hooks_of_local_classes(proto):
    define = """
        def make():
            def rebuild(cls, payload):
                inst = cls.__new__(cls)
                inst.payload = payload
                inst.rebuilt = True
                return inst
            class WithReduce:
                def __init__(self, payload):
                    self.payload = payload
                def __reduce__(self):
                    return (rebuild, (type(self), self.payload))
            class WithState:
                def __init__(self):
                    self.a, self.cache = 1, object()
                def __getstate__(self):
                    return {"a": self.a}
                def __setstate__(self, state):
                    self.__dict__.update(state)
                    self.cache = "restored"
            return WithReduce, WithState

        WithReduce, WithState = make()
        values = [WithReduce([1, 2]), WithState()]
    """
    check = """
        r, s = obj
        assert type(r).__qualname__ == "make.<locals>.WithReduce"
        assert r.payload == [1, 2] and r.rebuilt is True
        assert type(s).__qualname__ == "make.<locals>.WithState"
        assert s.a == 1 and s.cache == "restored"
    """
    roundtrip_in_fresh_processes(define, "values", check, proto)
