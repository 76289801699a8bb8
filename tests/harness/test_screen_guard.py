"""The static screen at its edges: what each finding names (its construct, not only its family),
local names that shadow builtins, bindings made by plain and relative imports, except-as and match
captures, decorators that are no name at all, and device mode around lambdas."""

from __future__ import annotations

import textwrap

import pytest
from kevolve.harness.screen import screen


def findings(source: str) -> list[tuple[int, str, str]]:
    """(line, construct, family) of each finding in the dedented snippet."""
    return [(f.line, f.construct, f.family) for f in screen(textwrap.dedent(source))]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from torch import *\n", [(1, "from torch import *", "torch-compute")]),
        ("from torch import _C\n", [(1, "torch._C", "introspection")]),
        ("from torch import softmax\n", [(1, "torch.softmax", "torch-compute")]),
        ("from torch import nn as F\ng = F\n", [(2, "torch.nn", "torch-compute")]),
        ("x = __builtins__\n", [(1, "__builtins__", "introspection")]),
        ("f = open\n", [(1, "open()", "filesystem")]),
        ("y = f().__class__\n", [(1, "f().__class__", "introspection")]),
        ("y = x.__class__.__bases__\n", [(1, "x.__class__", "introspection")]),
        ("y = a.b.__dict__\n", [(1, "a.b.__dict__", "introspection")]),
        ("import torch\ny = torch._C\n", [(2, "torch._C", "introspection")]),
        ("import math\nmath.pi = 3\n", [(2, "math.pi", "monkeypatch")]),
        ("y = getattr(x, name)\n", [(1, "getattr()", "introspection")]),
        ("y = a @ b\n", [(1, "a @ b", "torch-compute")]),
        ("def f():\n    global cache\n", [(2, "global cache", "monkeypatch")]),
        (
            "async def f(x):\n    await x\n",
            [
                (1, "async def f", "concurrency"),
                (2, "await", "concurrency"),
            ],
        ),
        ("from . import helpers\n", [(1, "import .", "import")]),
        ("from ..kernels import k\n", [(1, "import ..kernels", "import")]),
    ],
)
def test_each_finding_names_its_construct(
    source: str, expected: list[tuple[int, str, str]]
) -> None:
    assert findings(source) == expected


def test_a_long_construct_is_cut_to_forty_characters() -> None:
    forty = f"f({'a' * 29}).__doc__"
    longer = f"f({'a' * 30}).__doc__"
    assert (len(forty), len(longer)) == (40, 41)
    assert findings(f"y = {forty}\ny = {longer}\n") == [
        (1, forty, "introspection"),
        (2, longer[:37] + "...", "introspection"),
    ]


def test_naming_an_allowed_torch_function_and_dtype_metadata_is_allowed() -> None:
    source = """
    import torch
    name = torch.empty.__name__
    bits = torch.float16.itemsize.bit_length()
    """
    assert findings(source) == []


def test_a_layers_methods_compute_though_the_layer_may_be_named() -> None:
    source = """
    import torch
    layer = torch.nn.Linear
    y = torch.nn.Linear.forward(layer, x)
    """
    assert findings(source) == [(4, "torch.nn.Linear.forward", "torch-compute")]


def test_importing_a_submodule_binds_its_top_package() -> None:
    source = """
    import torch.nn
    y = torch.softmax(x, -1)
    """
    assert findings(source) == [(3, "torch.softmax", "torch-compute")]


def test_importing_triton_language_binds_triton_for_its_decorator() -> None:
    source = """
    import triton.language

    @triton.jit
    def k(x):
        return x.sum()
    """
    assert findings(source) == []


def test_a_relative_import_of_jit_is_not_triton_and_says_where_it_came_from() -> None:
    [_, decoy] = screen("from . import jit\n\n@jit\ndef k(x):\n    pass\n")
    assert decoy.construct == "@jit" and "`jit` refers to .jit" in decoy.message


def test_a_triton_decorator_imported_three_times_names_the_last() -> None:
    source = "from triton import jit\nfrom functools import cache as jit\nfrom triton import jit\n"
    decoy = [f for f in screen(source + "@jit\ndef k(x):\n    pass\n") if f.family == "decoy"]
    assert "`jit` is imported twice, again at line 3" in decoy[0].message


@pytest.mark.parametrize(
    ("binding", "line"),
    [
        ("try:\n    import triton\nexcept ImportError as jit:\n    pass\n", 4),
        ("match 1:\n    case jit:\n        pass\n", 3),
    ],
    ids=["except as", "match capture"],
)
def test_except_as_and_match_captures_rebind_a_decorator_name(binding: str, line: int) -> None:
    source = "from triton import jit\n" + binding + "@jit\ndef k(x):\n    pass\n"
    decoy = [f for f in screen(source) if f.family == "decoy"]
    assert [f.line for f in decoy] == [source.count("\n") - 2]
    assert f"`jit` is rebound by assignment at line {line}" in decoy[0].message


def test_a_decoy_attribute_decorator_says_which_import_to_use() -> None:
    [decoy] = [f for f in screen("import math as tl\n\n@tl.autotune\ndef k(x):\n    pass\n")]
    assert decoy.message == (
        "@tl.autotune is not Triton's decorator: `tl` refers to math, so the function would "
        "pass as a kernel; import it with `import triton` or `from triton import autotune` and "
        "bind no other name `tl`."
    )


def test_a_decorator_that_is_no_name_does_not_make_a_kernel() -> None:
    source = """
    import torch
    import triton

    @registry["jit"]
    def k(x):
        return torch.softmax(x, -1)
    """
    assert findings(source) == [(7, "torch.softmax", "torch-compute")]


def test_locals_named_like_builtins_are_not_the_builtins() -> None:
    source = """
    def launch(x, getattr):
        input = x
        input.data = x
        y = getattr(x, "__class__")

        def open(path):
            return path

        from . import vars
        return open(input), vars
    """
    assert findings(source) == [(10, "import .", "import")]


@pytest.mark.parametrize("local", ["import triton", "import triton.language"])
def test_a_decorator_bound_by_an_import_inside_the_function_is_not_trusted(local: str) -> None:
    source = f"""
    import triton

    def launch(x):
        {local}

        @triton.jit
        def k(y):
            return y.sum()
        return k
    """
    found = screen(textwrap.dedent(source))
    assert [(f.line, f.construct) for f in found] == [(7, "@triton.jit"), (9, "y.sum()")]
    assert "`triton` is bound inside the enclosing function" in found[0].message


def test_a_nested_functions_locals_are_not_its_parents() -> None:
    source = """
    def launch(x):
        def inner():
            open = 1
            return open
        return open(x)
    """
    assert findings(source) == [(6, "open()", "filesystem")]


def test_a_return_annotation_is_screened() -> None:
    assert findings("def launch(x) -> open('/etc/passwd').read():\n    pass\n") == [
        (1, "open()", "filesystem")
    ]


def test_every_argument_of_setattr_is_screened() -> None:
    source = """
    import torch
    setattr(box, "value", torch.softmax(x, -1))
    """
    assert findings(source) == [(3, "torch.softmax", "torch-compute")]


def test_patching_a_torch_function_through_an_alias_is_one_finding() -> None:
    source = """
    import torch as t
    t.softmax = my_softmax
    """
    assert findings(source) == [(3, "t.softmax", "monkeypatch")]


def test_a_builtin_reached_through_builtins_is_found() -> None:
    assert findings("f = __builtins__.open\n") == [(1, "__builtins__", "introspection")]


def test_lambdas_in_a_kernel_are_device_code_and_so_is_what_follows_them() -> None:
    source = """
    import triton

    @triton.jit
    def k(x):
        pick = lambda v: v.sum()
        return x.sum()

    g = lambda v: v.sum()
    """
    assert findings(source) == [(9, "v.sum()", "torch-compute")]
