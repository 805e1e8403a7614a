"""The examples in the public docstrings run and print what they claim (doctest)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "anypickle",
    "anypickle._byvalue",
    "anypickle._reconstruct",
    "anypickle._errors",
    "anypickle._pickler",
    "anypickle._unpickler",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"


RUST_FUNCTIONS = [("anypickle", name) for name in ("dumps", "dump", "loads", "load")] + [
    ("anypickle._reconstruct", name)
    for name in ("code", "function", "function_state", "cell", "cell_state")
]


@pytest.mark.parametrize(("module", "name"), RUST_FUNCTIONS)
def test_core_function_examples(module, name):
    """The Rust functions' docstrings (doctest does not collect builtins)."""
    doc = getattr(importlib.import_module(module), name).__doc__
    test = doctest.DocTestParser().get_doctest(doc, {}, name, None, 0)
    assert test.examples, f"{name} has no example"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    runner.run(test)
    assert runner.failures == 0, f"{runner.failures} example(s) of {name} failed"
