""".ci/module_graph.py on small source trees written to tmp_path: what counts as an edge,
what does not, and that a cycle fails the check. (The real core is not required to be
acyclic here; .ci/run checks it.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Dict

MODULE_GRAPH = Path(__file__).resolve().parent.parent / ".ci" / "module_graph.py"


def module_graph(tmp_path: Path, files: Dict[str, str]) -> subprocess.CompletedProcess[str]:
    src = tmp_path / "src"
    for name, text in files.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text(text, encoding="utf-8")
    return subprocess.run(
        [sys.executable, str(MODULE_GRAPH), str(src)], capture_output=True, text=True
    )


def test_an_acyclic_tree_passes_with_its_graph(tmp_path: Path) -> None:
    result = module_graph(
        tmp_path,
        {
            "lib.rs": "mod code;\nmod fast;\nmod parser;\npub use code::{Code as Kind, Span};\n",
            "code.rs": "pub struct Code;\npub struct Span;\n",
            # A directory module is one node; `super::` from a child is the parent itself,
            # `super::super::` the crate root; `crate::Kind` is resolved through lib.rs.
            "fast/mod.rs": "mod sse2;\nuse crate::Kind;\npub fn plain() {}\n",
            "fast/sse2.rs": "use super::plain;\nuse super::super::Span;\n",
            "parser.rs": "use crate::{fast::{self}, code::Code};\n",
        },
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        "code ->",
        "fast -> code",
        "parser -> code, fast",
        "no cycle",
    ]


def test_a_cycle_is_found_and_where_its_references_are(tmp_path: Path) -> None:
    result = module_graph(
        tmp_path,
        {
            "lib.rs": "mod a;\nmod b;\nmod c;\npub use c::Tree;\n",
            "a.rs": "pub fn f() -> crate::b::B { todo!() }\n",
            "b.rs": "pub struct B;\nuse crate::Tree;\n",
            "c/mod.rs": "pub struct Tree;\nmod child;\n",
            "c/child.rs": "\n\nuse super::super::a::f;\n",
        },
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.splitlines()[-4:] == [
        "cycle: a -> b -> c -> a",
        "  a -> b: b, a.rs:1",
        "  b -> c: Tree (lib.rs imports it from c), b.rs:2",
        "  c -> a: a, c/child.rs:3",
    ]


def test_comments_strings_tests_and_inner_supers_are_not_edges(tmp_path: Path) -> None:
    result = module_graph(
        tmp_path,
        {
            "lib.rs": "mod a;\nmod b;\n",
            "a.rs": "use crate::b::g;\npub(crate) fn f() {}\n",
            "b.rs": "\n".join(
                [
                    "pub fn g() {}",
                    "/// Calls [`crate::a::f`]. /* crate::a */",
                    'const TEXT: &str = "crate::a::f";',
                    'const RAW: &str = r#"crate::a"#;',
                    "const QUOTE: char = '\"';",
                    "mod inner { use super::g; }",
                    "#[cfg(test)]",
                    "mod tests { use crate::a::f; }",
                ]
            ),
        },
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == ["a -> b", "b ->", "no cycle"]


def test_a_name_lib_does_not_import_is_an_error(tmp_path: Path) -> None:
    result = module_graph(
        tmp_path,
        {
            "lib.rs": "mod a;\nmod b;\npub use b::*;\n",
            "a.rs": "use crate::Hidden;\n",
            "b.rs": "pub struct Hidden;\n",
        },
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == (
        "error: a.rs:1: crate::Hidden is neither a module nor a name lib.rs imports "
        "(lib.rs has a glob re-export): import it from the module that defines it"
    )
