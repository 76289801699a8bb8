"""Tests for harness.search.edits: the reply shapes models produce, turned into a module or None."""

from __future__ import annotations

from kevolve.harness.search.edits import Edit, apply_edits, apply_reply, full_module, parse_edits

PARENT = """\
import torch
import triton
import triton.language as tl

BLOCK = 256


@triton.jit
def _kernel(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask)
    tl.store(y_ptr + offs, x * 2, mask=mask)


def double(x: torch.Tensor) -> torch.Tensor:
    y = torch.empty_like(x)
    n = x.numel()
    _kernel[(triton.cdiv(n, BLOCK),)](x, y, n, BLOCK=BLOCK)
    return y
"""

NEW_MODULE = """\
import torch
import triton
import triton.language as tl


@triton.jit
def _kernel(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(y_ptr + offs, tl.load(x_ptr + offs, mask=mask) * 2, mask=mask)


def double(x: torch.Tensor) -> torch.Tensor:
    y = torch.empty_like(x)
    _kernel[(triton.cdiv(x.numel(), 4096),)](x, y, x.numel(), BLOCK=4096, num_warps=8)
    return y
"""


def block(search: str, replace: str) -> str:
    """One SEARCH/REPLACE block as a model writes it."""
    return f"<<<<<<< SEARCH\n{search}\n=======\n{replace}\n>>>>>>> REPLACE\n"


def test_one_unfenced_block_is_applied() -> None:
    reply = "Use a larger block.\n\n" + block("BLOCK = 256", "BLOCK = 1024")
    assert apply_reply(reply, PARENT) == PARENT.replace("BLOCK = 256", "BLOCK = 1024")


def test_blocks_inside_a_python_fence_are_applied() -> None:
    reply = "Idea.\n```python\n" + block("BLOCK = 256", "BLOCK = 2048") + "```\n"
    assert apply_reply(reply, PARENT) == PARENT.replace("BLOCK = 256", "BLOCK = 2048")


def test_several_blocks_apply_in_order() -> None:
    reply = (
        block("BLOCK = 256", "BLOCK = 1024")
        + "and\n"
        + block("    return y", "    return y  # done")
        + block("x * 2", "x + x")
    )
    expected = (
        PARENT.replace("BLOCK = 256", "BLOCK = 1024")
        .replace("    return y", "    return y  # done")
        .replace("x * 2", "x + x")
    )
    assert apply_reply(reply, PARENT) == expected


def test_a_later_block_sees_the_earlier_edit() -> None:
    reply = block("BLOCK = 256", "BLOCK = 512") + block("BLOCK = 512", "BLOCK = 4096")
    assert apply_reply(reply, PARENT) == PARENT.replace("BLOCK = 256", "BLOCK = 4096")


def test_search_with_wrong_indentation_matches_and_is_reindented() -> None:
    search = "mask = offs < n\nx = tl.load(x_ptr + offs, mask=mask)"
    replace = "mask = offs < n\nx = tl.load(x_ptr + offs, mask=mask, other=0.0)"
    result = apply_reply(block(search, replace), PARENT)
    assert result == PARENT.replace(
        "x = tl.load(x_ptr + offs, mask=mask)", "x = tl.load(x_ptr + offs, mask=mask, other=0.0)"
    )


def test_search_with_extra_spaces_and_blank_edges_still_matches() -> None:
    search = "\n    y   =   torch.empty_like( x )\n    n = x.numel()\n"
    replace = "    y = torch.empty_like(x)\n    n = x.numel()  # elements"
    result = apply_reply(block(search, replace), PARENT)
    assert result == PARENT.replace("    n = x.numel()", "    n = x.numel()  # elements")


def test_over_indented_search_is_dedented_in_the_replacement() -> None:
    search = "        BLOCK = 256"
    replace = "        BLOCK = 128"
    assert apply_reply(block(search, replace), PARENT) == PARENT.replace(
        "BLOCK = 256", "BLOCK = 128"
    )


def test_deleting_lines_with_an_empty_replace() -> None:
    reply = "<<<<<<< SEARCH\nBLOCK = 256\n\n=======\n>>>>>>> REPLACE\n"
    assert apply_reply(reply, PARENT) == PARENT.replace("BLOCK = 256\n", "")


def test_non_matching_block_falls_back_to_the_full_module() -> None:
    reply = (
        block("BLOCK = 999", "BLOCK = 1")
        + "\nOr, the whole module:\n```python\n"
        + NEW_MODULE
        + "```\n"
    )
    assert apply_reply(reply, PARENT) == NEW_MODULE


def test_non_matching_block_without_a_module_gives_none() -> None:
    assert apply_reply(block("BLOCK = 999", "BLOCK = 1"), PARENT) is None


def test_edit_that_breaks_the_syntax_gives_none() -> None:
    assert apply_reply(block("BLOCK = 256", "BLOCK = (256"), PARENT) is None


def test_full_module_only() -> None:
    reply = f"Here is a faster version.\n\n```python\n{NEW_MODULE}```\nIt uses 4096 lanes."
    assert apply_reply(reply, PARENT) == NEW_MODULE


def test_the_longest_defining_python_fence_wins() -> None:
    snippet = "```python\ndef helper():\n    return 1\n```\n"
    shell = "```bash\npip install triton\n```\n"
    reply = snippet + shell + f"```py\n{NEW_MODULE}```\n" + "```python\nBLOCK = 4096\n```\n"
    assert apply_reply(reply, PARENT) == NEW_MODULE


def test_untagged_fence_with_a_module_is_accepted() -> None:
    assert full_module(f"```\n{NEW_MODULE}```") == NEW_MODULE


def test_non_python_fences_are_ignored() -> None:
    assert full_module(f"```cuda\n{NEW_MODULE}```") is None


def test_unclosed_fence_is_ignored() -> None:
    assert apply_reply(f"```python\n{NEW_MODULE}", PARENT) is None


def test_prose_only_gives_none() -> None:
    assert apply_reply("I would increase BLOCK and use more warps.", PARENT) is None
    assert apply_reply("", PARENT) is None


def test_fenced_module_with_a_syntax_error_gives_none() -> None:
    broken = NEW_MODULE.replace("def double(", "def double(:")
    assert apply_reply(f"```python\n{broken}```\n", PARENT) is None


def test_fence_without_a_function_or_class_gives_none() -> None:
    assert apply_reply("```python\nBLOCK = 4096\n```\n", PARENT) is None


def test_windows_line_endings_are_accepted() -> None:
    reply = block("BLOCK = 256", "BLOCK = 1024").replace("\n", "\r\n")
    assert apply_reply(reply, PARENT) == PARENT.replace("BLOCK = 256", "BLOCK = 1024")


def test_parse_edits_reads_markers_of_other_lengths_and_drops_unfinished_blocks() -> None:
    reply = (
        "<<<<< SEARCH\na\n=====\nb\n>>>>> REPLACE\n"
        "<<<<<<< SEARCH\nc\n=======\nd\n"  # cut off: no REPLACE marker
    )
    assert parse_edits(reply) == [Edit("a", "b")]


def test_apply_edits_refuses_an_empty_search() -> None:
    assert apply_edits(PARENT, [Edit("", "x = 1")]) is None
    assert apply_edits(PARENT, [Edit("\n  \n", "x = 1")]) is None


def test_exact_match_replaces_only_the_first_occurrence() -> None:
    source = "a = 1\na = 1\n"
    assert apply_edits(source, [Edit("a = 1", "a = 2")]) == "a = 2\na = 1\n"
