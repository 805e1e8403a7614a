"""Functions pickled by value (issue #4): lambdas, closures, nested, recursive,
generator and async functions, their globals and metadata, methods and other
function wrappers.

Every test defines its objects as the ``__main__`` of one child interpreter,
pickles them there with ``anypickle.dumps`` and loads them with the stdlib's
``pickle.loads`` in another child, where the definitions do not exist.
"""

from __future__ import annotations

import io
import pickle
import sys

import anypickle
import pytest
from byvalue_support import (
    dump_in_fresh_process,
    load_in_fresh_process,
    roundtrip_in_fresh_processes,
)

PROTOS = [pytest.param(p, id=f"proto{p}") for p in (2, 5)]
ALL_PROTOS = [pytest.param(p, id=f"proto{p}") for p in range(6)]


@pytest.mark.parametrize("proto", ALL_PROTOS)
def test_lambda(proto):
    define = """
        import threading
        K = 10
        UNRELATED_LOCK = threading.Lock()   # a global the lambda does not use
        f = lambda x, y=2: x * y + K
    """
    check = """
        f = obj
        assert f(3) == 16
        assert f(3, y=3) == 19
        assert f.__defaults__ == (2,)
        assert f.__name__ == "<lambda>"
        assert f.__qualname__ == "<lambda>"
        assert f.__module__ == "__main__"
        assert f.__globals__["K"] == 10
        assert "UNRELATED_LOCK" not in f.__globals__
        assert f.__globals__ is not vars(sys.modules["__main__"])
        assert not hasattr(sys.modules["__main__"], "K")
    """
    roundtrip_in_fresh_processes(define, "f", check, proto)


@pytest.mark.parametrize("proto", PROTOS)
def test_nested_functions_and_closures(proto):
    define = """
        def make_adder(n):
            def add(x):
                return x + n
            return add

        def make_counter():
            count = 0
            def inc(step=1):
                nonlocal count
                count += step
                return count
            return inc

        def make_pair():
            value = "initial"
            def get():
                return value
            def set_(new):
                nonlocal value
                value = new
            return get, set_

        def outer():
            def middle():
                def inner():
                    return "inner"
                return inner
            return middle()

        add5 = make_adder(5)
        counter = make_counter()
        counter()
        counter()
        get, set_ = make_pair()
        inner = outer()
    """
    check = """
        add5, counter, get, set_, inner = obj
        assert add5(1) == 6
        assert add5.__qualname__ == "make_adder.<locals>.add"
        assert add5.__name__ == "add"
        assert add5.__code__.co_freevars == ("n",)
        assert add5.__closure__[0].cell_contents == 5

        assert counter() == 3, "closure state at dump time was lost"
        assert counter(10) == 13

        assert get() == "initial"
        set_("changed")
        assert get() == "changed", "two closures over one cell no longer share it"
        assert get.__closure__[0] is set_.__closure__[0]

        assert inner() == "inner"
        assert inner.__qualname__ == "outer.<locals>.middle.<locals>.inner"
    """
    roundtrip_in_fresh_processes(define, "(add5, counter, get, set_, inner)", check, proto)


@pytest.mark.parametrize("proto", PROTOS)
def test_empty_cell_and_self_referencing_closure(proto):
    define = """
        def make_late():
            def late():
                return later
            return late
            later = 1  # never runs: the cell stays empty

        def make_fact():
            def fact(n):
                return 1 if n <= 1 else n * fact(n - 1)
            return fact

        late = make_late()
        fact = make_fact()
    """
    check = """
        late, fact = obj
        cell = late.__closure__[0]
        try:
            cell.cell_contents
        except ValueError:
            pass
        else:
            raise AssertionError("the empty cell was filled")
        try:
            late()
        except NameError as exc:
            assert "later" in str(exc)
        else:
            raise AssertionError("reading an unassigned free variable did not raise NameError")

        assert fact(5) == 120
        assert fact.__closure__[0].cell_contents is fact
    """
    roundtrip_in_fresh_processes(define, "(late, fact)", check, proto)


@pytest.mark.parametrize("proto", PROTOS)
def test_recursive_functions_and_shared_globals(proto):
    define = """
        import types

        def fib(n):
            return n if n < 2 else fib(n - 1) + fib(n - 2)

        def is_even(n):
            return True if n == 0 else is_odd(n - 1)

        def is_odd(n):
            return False if n == 0 else is_even(n - 1)

        STATE = 0

        def set_state(v):
            global STATE
            STATE = v

        def get_state():
            return STATE

        # A function with other globals: a module built at run time.
        other = types.ModuleType("othermod")
        exec("STATE = 'other'\\ndef get_other():\\n    return STATE\\n", other.__dict__)
        get_other = other.get_other
    """
    check = """
        fib, is_even, set_state, get_state, get_other = obj
        assert fib(15) == 610
        assert is_even(10) is True and is_even(7) is False
        is_odd = is_even.__globals__["is_odd"]
        assert is_odd(7) is True
        assert is_odd.__globals__ is is_even.__globals__
        assert is_odd.__globals__["is_even"] is is_even

        # Everything dumped in one call from one globals dict shares one dict again.
        assert fib.__globals__ is is_even.__globals__ is set_state.__globals__
        assert set_state.__globals__ is get_state.__globals__
        assert get_state() == 0
        set_state(42)
        assert get_state() == 42, "a global written by one function is not seen by the other"
        assert not hasattr(sys.modules["__main__"], "STATE")

        assert get_other() == "other"
        assert get_other.__globals__ is not get_state.__globals__
        assert get_other.__module__ == "othermod"
    """
    roundtrip_in_fresh_processes(
        define, "(fib, is_even, set_state, get_state, get_other)", check, proto
    )


@pytest.mark.parametrize("proto", PROTOS)
def test_generator_coroutine_and_async_generator_functions(proto):
    define = """
        def make():
            base = 10
            def gen(n):
                for i in range(n):
                    yield base + i
            async def coro(x):
                return x * 2
            async def agen(n):
                for i in range(n):
                    yield i * base
            return gen, coro, agen

        gen, coro, agen = make()

        async def main_coro(x):
            return await coro(x) + 1
    """
    check = """
        import asyncio
        import inspect

        gen, coro, agen, main_coro = obj
        assert inspect.isgeneratorfunction(gen)
        assert list(gen(3)) == [10, 11, 12]
        assert inspect.iscoroutinefunction(coro)
        assert asyncio.run(coro(21)) == 42
        assert inspect.iscoroutinefunction(main_coro)
        assert asyncio.run(main_coro(20)) == 41
        assert inspect.isasyncgenfunction(agen)

        async def collect():
            return [x async for x in agen(3)]

        assert asyncio.run(collect()) == [0, 10, 20]
        assert agen.__qualname__ == "make.<locals>.agen"
    """
    roundtrip_in_fresh_processes(define, "(gen, coro, agen, main_coro)", check, proto)


@pytest.mark.parametrize("proto", PROTOS)
def test_function_metadata(proto):
    define = """
        def make():
            class Local:
                pass
            def f(a, b: int = 1, /, c: str = "c", *args, d: float = 2.0, e, **kw) -> list:
                "The docstring of f."
                return [a, b, c, args, d, e, kw]
            f.custom = {"x": [1, 2]}
            def g(x: Local) -> Local:
                return x
            g.__module__ = "some.fake.module"
            g.__doc__ = None
            return f, g

        f, g = make()
    """
    check = """
        f, g = obj
        assert f(0, e=5) == [0, 1, "c", (), 2.0, 5, {}]
        got = f(0, 9, "z", 7, 8, d=1.5, e=6, extra=True)
        assert got == [0, 9, "z", (7, 8), 1.5, 6, {"extra": True}]
        assert f.__name__ == "f"
        assert f.__qualname__ == "make.<locals>.f"
        assert f.__module__ == "__main__"
        assert f.__doc__ == "The docstring of f."
        assert f.__defaults__ == (1, "c")
        assert f.__kwdefaults__ == {"d": 2.0}
        assert f.__annotations__ == {"b": int, "c": str, "d": float, "return": list}
        assert f.__dict__ == {"custom": {"x": [1, 2]}}
        assert f.__code__.co_posonlyargcount == 2
        assert f.__code__.co_kwonlyargcount == 2

        assert g.__module__ == "some.fake.module"
        assert g.__doc__ is None
        local_cls = g.__annotations__["x"]
        assert g.__annotations__["return"] is local_cls
        assert local_cls.__qualname__ == "make.<locals>.Local"
        inst = local_cls()
        assert g(inst) is inst
    """
    roundtrip_in_fresh_processes(define, "(f, g)", check, proto)


@pytest.mark.parametrize("proto", PROTOS)
def test_globals_used_by_nested_code_and_class_bodies(proto):
    define = """
        import math
        import os.path
        import xml.dom.minidom

        SCALE = 3
        OFFSET = 100
        CLASS_ATTR_SOURCE = "from-global"
        COUNTER = 0

        def helper(x):
            return x + 1

        def make():
            def outer(x):
                def inner(y):
                    return helper(y) * SCALE   # globals read only by nested code
                return inner(x)
            return outer

        def make_factory():
            def factory():
                class Inner:
                    attr = CLASS_ATTR_SOURCE   # LOAD_NAME in a class body in a function
                    def meth(self):
                        return OFFSET
                return Inner
            return factory

        def bump():
            global COUNTER
            COUNTER += 1
            return COUNTER

        def uses_missing():
            return NOT_DEFINED_ANYWHERE

        outer = make()
        factory = make_factory()
        comp = lambda: [SCALE * i for i in range(3)]
        modules = lambda x: (math.sqrt(x), os.path.join("a", "b"))
        minidom = lambda s: xml.dom.minidom.parseString(s).documentElement.tagName
    """
    check = """
        outer, factory, comp, bump, uses_missing, modules, minidom = obj
        assert outer(2) == 9
        assert {"helper", "SCALE"} <= set(outer.__globals__)
        cls = factory()
        assert cls.attr == "from-global"
        assert cls().meth() == 100
        assert cls.__qualname__ == "make_factory.<locals>.factory.<locals>.Inner"
        assert comp() == [0, 3, 6]

        assert bump() == 1
        assert bump() == 2
        assert bump.__globals__["COUNTER"] == 2
        assert not hasattr(sys.modules["__main__"], "COUNTER")

        try:
            uses_missing()
        except NameError as exc:
            assert "NOT_DEFINED_ANYWHERE" in str(exc)
        else:
            raise AssertionError("expected NameError")

        assert modules(16.0) == (4.0, "a" + __import__("os").sep + "b")
        assert modules.__globals__["math"] is sys.modules["math"]
        # A submodule reached through its package's global must be imported on load.
        assert minidom("<root/>") == "root"
    """
    roundtrip_in_fresh_processes(
        define, "(outer, factory, comp, bump, uses_missing, modules, minidom)", check, proto
    )


@pytest.mark.parametrize("proto", PROTOS)
def test_methods_and_descriptors(proto):
    define = """
        import abc

        def make():
            class Shape(abc.ABC):
                @abc.abstractmethod
                def area(self):
                    ...
                @staticmethod
                def kind():
                    return "shape"
                @classmethod
                def create(cls, *args):
                    return cls(*args)
                @property
                def double_area(self):
                    "Twice the area."
                    return 2 * self.area()
                @property
                @abc.abstractmethod
                def name(self):
                    ...

            class Square(Shape):
                def __init__(self, side):
                    self._side = side
                def area(self):
                    return self._side ** 2
                @property
                def name(self):
                    return "square"
                def _get_side(self):
                    return self._side
                def _set_side(self, v):
                    self._side = v
                side = property(_get_side, _set_side, doc="The side.")

            return Shape, Square

        Shape, Square = make()
        sq = Square(3)
        bound = sq.area
        sm = Shape.__dict__["kind"]
        cm = Shape.__dict__["create"]
        prop = Shape.__dict__["double_area"]
        create = Square.create
        lone_static = staticmethod(lambda: 7)
        lone_class = classmethod(lambda cls: cls.__name__)
    """
    check = """
        Shape, Square, sq, bound, sm, cm, prop, create, lone_static, lone_class = obj
        assert type(sq) is Square and issubclass(Square, Shape)
        assert bound() == 9
        assert bound.__self__ is sq
        assert bound.__func__ is Square.__dict__["area"]
        assert isinstance(sm, staticmethod) and sm.__func__() == "shape"
        assert Shape.kind() == "shape" and sq.kind() == "shape"
        assert isinstance(cm, classmethod)
        assert create.__self__ is Square
        made = create(4)
        assert type(made) is Square and made.area() == 16
        assert Shape.__dict__["create"] is cm
        assert isinstance(prop, property) and prop.__doc__ == "Twice the area."
        assert prop.fget(sq) == 18 and sq.double_area == 18
        assert Square.side.__doc__ == "The side."
        sq.side = 5
        assert sq.area() == 25

        assert Shape.__abstractmethods__ == frozenset({"area", "name"})
        assert Shape.__dict__["area"].__isabstractmethod__ is True
        assert Shape.__dict__["name"].__isabstractmethod__ is True
        assert Square.__abstractmethods__ == frozenset()
        try:
            Shape()
        except TypeError:
            pass
        else:
            raise AssertionError("an abstract class could be instantiated")
        assert Square(1).name == "square"

        assert isinstance(lone_static, staticmethod) and lone_static.__func__() == 7
        assert isinstance(lone_class, classmethod) and lone_class.__func__(int) == "int"
    """
    roundtrip_in_fresh_processes(
        define,
        "(Shape, Square, sq, bound, sm, cm, prop, create, lone_static, lone_class)",
        check,
        proto,
    )


@pytest.mark.parametrize("proto", PROTOS)
def test_partial_wraps_and_lru_cache(proto):
    define = """
        import functools

        def make():
            def power(base, exp):
                return base ** exp
            square = functools.partial(power, exp=2)

            def deco(fn):
                @functools.wraps(fn)
                def wrapper(*args, **kwargs):
                    return ("wrapped", fn(*args, **kwargs))
                return wrapper

            @deco
            def greet(name):
                "Greets."
                return "hi " + name

            @functools.lru_cache(maxsize=32)
            def cached_square(n):
                return n * n

            cached_square(3)
            return square, greet, cached_square

        square, greet, cached_square = make()
        main_partial = functools.partial(lambda a, b: a - b, 10)

        @functools.lru_cache(maxsize=None)
        def main_cached(n):
            return n + 1000
    """
    check = """
        import functools

        square, greet, cached_square, main_partial, main_cached = obj
        assert isinstance(square, functools.partial)
        assert square(5) == 25
        assert square.keywords == {"exp": 2}
        assert square.func.__qualname__ == "make.<locals>.power"

        assert greet("bob") == ("wrapped", "hi bob")
        assert greet.__name__ == "greet"
        assert greet.__qualname__ == "make.<locals>.greet"
        assert greet.__doc__ == "Greets."
        assert greet.__wrapped__("x") == "hi x"

        assert cached_square(4) == 16
        assert cached_square.cache_info().maxsize == 32
        assert cached_square.__wrapped__(5) == 25
        assert cached_square.__qualname__ == "make.<locals>.cached_square"
        cached_square(6)
        cached_square(6)
        assert cached_square.cache_info().hits >= 1, "the loaded lru_cache does not cache"

        assert main_partial(3) == 7
        assert main_cached(1) == 1001
        assert main_cached.cache_info().maxsize is None
    """
    roundtrip_in_fresh_processes(
        define, "(square, greet, cached_square, main_partial, main_cached)", check, proto
    )


@pytest.mark.skipif(sys.version_info < (3, 12), reason="PEP 695 syntax needs Python 3.12")
@pytest.mark.parametrize("proto", PROTOS)
def test_function_type_params(proto):
    define = """
        def first[T](xs: list[T]) -> T:
            return xs[0]

        def make():
            def pair[K: str, *Ts, **P](k: K) -> tuple[K, K]:
                return (k, k)
            return pair

        pair = make()
    """
    check = """
        import typing

        first, pair = obj
        assert first([3, 4]) == 3
        (t,) = first.__type_params__
        assert isinstance(t, typing.TypeVar) and t.__name__ == "T"
        assert first.__annotations__["return"] is t
        assert first.__annotations__["xs"] == list[t]

        assert pair("a") == ("a", "a")
        k, ts, p = pair.__type_params__
        assert isinstance(k, typing.TypeVar) and k.__name__ == "K" and k.__bound__ is str
        assert isinstance(ts, typing.TypeVarTuple) and ts.__name__ == "Ts"
        assert isinstance(p, typing.ParamSpec) and p.__name__ == "P"
        assert pair.__annotations__["k"] is k
        assert pair.__qualname__ == "make.<locals>.pair"
    """
    roundtrip_in_fresh_processes(define, "(first, pair)", check, proto)


# --------------------------------------------------------------------------------------
# Same-process round trips
# --------------------------------------------------------------------------------------


_SHARED_GLOBAL = ["shared"]


def test_same_process_sharing_of_globals_and_cells():
    def make():
        cell_value = []

        def f():
            return _SHARED_GLOBAL, cell_value

        def g():
            cell_value.append(1)
            return _SHARED_GLOBAL

        return f, g

    f, g = make()
    for proto in (2, 5):
        f2, g2 = pickle.loads(anypickle.dumps((f, g), proto))
        assert f2 is not f and g2 is not g
        assert f2.__globals__ is g2.__globals__
        assert f2.__closure__[0] is g2.__closure__[0]
        g2()
        shared, cell = f2()
        assert shared == ["shared"] and cell == [1]
        assert f() == (["shared"], []), "loading changed the original closure"
        # anypickle's own reader gives the same.
        f3, g3 = anypickle.loads(anypickle.dumps((f, g), proto))
        assert f3.__globals__ is g3.__globals__
        assert f3() == (["shared"], [])


def test_deterministic_false_dump_and_pickler_by_value():
    def make():
        k = 4

        class K:
            def __init__(self, v):
                self.v = v

        return (lambda x: x * k), K

    fn, K = make()
    data = anypickle.dumps([fn, fn, K(2), K], deterministic=False)
    a, b, inst, cls = pickle.loads(data)
    assert a is b and a(3) == 12
    assert a.__qualname__ == fn.__qualname__
    assert type(inst) is cls and inst.v == 2 and cls.__qualname__ == K.__qualname__

    # anypickle.dump and anypickle.Pickler take the same by-value decisions.
    buf = io.BytesIO()
    anypickle.dump([fn, K(3)], buf, 5)
    assert buf.getvalue() == anypickle.dumps([fn, K(3)], 5)
    buf = io.BytesIO()
    anypickle.Pickler(buf, 5).dump([fn, K(3)])
    f2, k2 = pickle.loads(buf.getvalue())
    assert f2(2) == 8 and k2.v == 3 and type(k2).__qualname__ == K.__qualname__


def test_out_of_band_buffers_inside_by_value_objects():
    def make():
        payload = pickle.PickleBuffer(bytearray(b"abc" * 10))

        class K:
            buf = pickle.PickleBuffer(b"xyz")

        return (lambda: bytes(payload.raw())), K

    fn, K = make()
    buffers = []
    data = anypickle.dumps([fn, K], 5, buffer_callback=buffers.append)
    assert len(buffers) == 2
    fn2, K2 = pickle.loads(data, buffers=buffers)
    assert fn2() == b"abc" * 10
    assert bytes(K2.buf) == b"xyz"


@pytest.mark.parametrize("proto", PROTOS)
def test_loaded_function_pickles_again(proto):
    # A function loaded by value is itself not importable: it must pickle by value again.
    define = """
        def make():
            y = 7
            return lambda x: x + y
        f = make()
    """
    data = dump_in_fresh_process(define, "f", proto)
    load_in_fresh_process(
        data,
        f"""
        import anypickle
        again = anypickle.dumps(obj, {proto})
        g = pickle.loads(again)
        assert g is not obj and g(1) == 8
        assert g.__qualname__ == "make.<locals>.<lambda>"
        """,
    )
