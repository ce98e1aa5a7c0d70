"""The module graph of the Rust core: `python .ci/module_graph.py [SRC]` (default rust/core/src).

The nodes are the top-level modules that lib.rs declares (`mod x;`): the file x.rs or
x/mod.rs with every child file under x/, so a module split into children is one node.
An edge x -> y is a reference in x's code to y: `crate::y...` in a `use` or any path,
`super::y` where `super` reaches the crate root, and `crate::Name` where lib.rs imports
`Name` from y (`pub use y::Name;`), resolved to y. Comments, strings and `#[cfg(test)]`
modules are not read: tests may use anything, as integration tests do.

Prints one line per module, `module -> deps`, then exits 0 when the graph has no cycle,
1 listing each cycle (with where its references are), 2 when a `crate::` reference names
nothing lib.rs declares or imports by name (import it from the defining module).
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Set, Tuple

DEFAULT_SRC = Path(__file__).resolve().parent.parent / "rust" / "core" / "src"

# What the scan must not read as code; each is blanked out, keeping its line breaks.
NOT_CODE = re.compile(
    r"//[^\n]*"
    r"|/\*.*?\*/"
    r"|\bb?r(?P<hashes>#*)\".*?\"(?P=hashes)"
    r"|b?\"(?:\\.|[^\"\\])*\""
    r"|b?'(?:\\(?:u\{[0-9a-fA-F]+\}|x[0-9a-fA-F]{2}|.)|[^\\'\n])'",
    re.S,
)
TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|::|\S")
MODULE_DECLARATION = re.compile(r"\bmod\s+([A-Za-z_][A-Za-z0-9_]*)\s*;")
ITEM_DEFINITION = re.compile(
    r"\b(?:fn|struct|enum|union|trait|type|const|static|macro_rules!)\s+([A-Za-z_][A-Za-z0-9_]*)"
)
CFG_TEST = ["#", "[", "cfg", "(", "test", ")", "]"]


@dataclass
class Token:
    text: str
    line: int


@dataclass
class Reference:
    """A path that leaves its module for the crate root: its first segment after the root."""

    name: str
    file: Path
    line: int


@dataclass
class Graph:
    modules: List[str]
    edges: Dict[str, Dict[str, Reference]] = field(default_factory=dict)
    errors: List[str] = field(default_factory=list)


def code_of(path: Path) -> str:
    return NOT_CODE.sub(lambda match: "\n" * match.group().count("\n"), path.read_text("utf-8"))


def tokens_of(path: Path) -> List[Token]:
    tokens: List[Token] = []
    for number, line in enumerate(code_of(path).splitlines(), start=1):
        tokens += [Token(text, number) for text in TOKEN.findall(line)]
    return tokens


def first_segments(tokens: List[Token], at: int) -> Iterator[Tuple[str, int]]:
    """The first segment of each path of the use tree or path at tokens[at], with its line:
    `code::Code` gives code, `{code::Code, model::{A, B}}` gives code and model."""
    if at >= len(tokens):
        return
    if tokens[at].text != "{":
        yield tokens[at].text, tokens[at].line
        return
    depth = 0
    expect_segment = True
    for token in tokens[at:]:
        if token.text == "{":
            depth += 1
            expect_segment = depth == 1
        elif token.text == "}":
            depth -= 1
            if depth == 0:
                return
        elif token.text == "," and depth == 1:
            expect_segment = True
        elif expect_segment:
            yield token.text, token.line
            expect_segment = False


def references_to_root(path: Path, depth_in_module: int) -> Iterator[Reference]:
    """Every `crate::` path of the file, and every `super::` path that climbs to the crate
    root from a file `depth_in_module` files below its top-level module (0 for x.rs or
    x/mod.rs), outside `#[cfg(test)]` modules."""
    tokens = tokens_of(path)
    open_braces: List[str] = []  # per `{`: "mod", "test" (a #[cfg(test)] mod) or ""
    test_attribute = False
    index = 0
    while index < len(tokens):
        text = tokens[index].text
        if [token.text for token in tokens[index : index + len(CFG_TEST)]] == CFG_TEST:
            test_attribute = True
            index += len(CFG_TEST)
            continue
        if text == "{":
            is_module = index >= 2 and tokens[index - 2].text == "mod"
            open_braces.append(("test" if test_attribute else "mod") if is_module else "")
            test_attribute = False
        elif text == "}":
            if open_braces:
                open_braces.pop()
        elif text == ";":
            test_attribute = False
        elif "test" not in open_braces and text in ("crate", "super"):
            climbed = 0
            at = index
            while (
                at + 1 < len(tokens) and tokens[at].text == "super" and tokens[at + 1].text == "::"
            ):
                climbed += 1
                at += 2
            if text == "crate" and at + 1 < len(tokens) and tokens[at + 1].text == "::":
                at += 2
            elif text == "crate" or climbed <= depth_in_module + open_braces.count("mod"):
                # `pub(crate)`, or `super` that stays inside the module.
                index = max(at, index + 1)
                continue
            for name, line in first_segments(tokens, at):
                yield Reference(name, path, line)
            index = at
            continue
        index += 1


def module_files(src: Path, module: str) -> Iterator[Tuple[Path, int]]:
    """The files of a top-level module with their depth below it (x.rs and x/mod.rs: 0)."""
    directory = src / module
    if (src / f"{module}.rs").is_file():
        yield src / f"{module}.rs", 0
    for path in sorted(directory.rglob("*.rs")) if directory.is_dir() else []:
        relative = path.relative_to(directory)
        yield path, len(relative.parts) - (1 if path.name == "mod.rs" else 0)


def use_tree(tokens: List[str], at: int, prefix: List[str], out: Dict[str, List[str]]) -> int:
    """Reads the use tree at tokens[at] into out (the name it brings in -> its full path,
    `*` for a glob) and returns the index after it."""
    path = list(prefix)
    while at < len(tokens):
        text = tokens[at]
        if text == "{":
            at += 1
            while at < len(tokens) and tokens[at] != "}":
                at = use_tree(tokens, at, path, out)
                at += tokens[at : at + 1] == [","]
            return at + 1
        path.append(text)
        at += 1
        if tokens[at : at + 1] == ["::"]:
            at += 1
        elif tokens[at : at + 1] == ["as"]:
            out[tokens[at + 1]] = path
            return at + 2
        else:
            break
    out[path[-1]] = path
    return at


def root_imports(lib: Path, modules: List[str]) -> Tuple[Dict[str, Optional[str]], bool]:
    """What lib.rs's `use` lines bring into the crate root: name -> the module defining it
    (None when it comes from another crate), and whether any is a glob (`use x::*`)."""
    paths: Dict[str, List[str]] = {}
    for statement in re.findall(r"\buse\s+([^;]*);", code_of(lib)):
        use_tree(TOKEN.findall(statement), 0, [], paths)
    imported: Dict[str, Optional[str]] = {}
    for name, path in paths.items():
        source = path[1] if path[0] in ("crate", "self") and len(path) > 1 else path[0]
        imported[name] = source if source in modules else None
    return imported, "*" in paths


def module_graph(src: Path) -> Graph:
    lib = src / "lib.rs"
    lib_code = code_of(lib)
    graph = Graph(modules=MODULE_DECLARATION.findall(lib_code))
    imported, glob = root_imports(lib, graph.modules)
    defined_in_lib = set(ITEM_DEFINITION.findall(lib_code))
    for module in graph.modules:
        deps = graph.edges.setdefault(module, {})
        for path, depth in module_files(src, module):
            for reference in references_to_root(path, depth):
                name = reference.name
                target = name if name in graph.modules else imported.get(name)
                if target is None and name not in imported and name not in defined_in_lib:
                    where = f"{path.relative_to(src)}:{reference.line}"
                    hint = " (lib.rs has a glob re-export)" if glob else ""
                    graph.errors.append(
                        f"{where}: crate::{name} is neither a module nor a name lib.rs "
                        f"imports{hint}: import it from the module that defines it"
                    )
                if target is not None and target != module and target not in deps:
                    deps[target] = reference
    return graph


def cycles(graph: Graph) -> List[List[str]]:
    """One shortest cycle through each module that lies on a cycle not already listed."""
    found: List[List[str]] = []
    covered: Set[str] = set()
    for start in graph.modules:
        if start in covered:
            continue
        # Breadth-first from start's successors back to start: the shortest cycle.
        previous: Dict[str, str] = {}
        frontier = [start]
        while frontier and start not in previous:
            next_frontier = []
            for module in frontier:
                for dep in graph.edges[module]:
                    if dep not in previous:
                        previous[dep] = module
                        next_frontier.append(dep)
            frontier = next_frontier
        if start in previous:
            cycle = [start]
            while len(cycle) == 1 or cycle[-1] != start:
                cycle.append(previous[cycle[-1]])
            cycle.reverse()
            found.append(cycle)
            covered.update(cycle)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", nargs="?", type=Path, default=DEFAULT_SRC)
    src = parser.parse_args().src
    graph = module_graph(src)
    for module in graph.modules:
        print(f"{module} -> {', '.join(sorted(graph.edges[module]))}".rstrip())
    # One stream, so that a CI log keeps the graph and what is wrong with it in order.
    for error in graph.errors:
        print(f"error: {error}")
    if graph.errors:
        sys.exit(2)
    found = cycles(graph)
    for cycle in found:
        print(f"cycle: {' -> '.join(cycle)}")
        for module, dep in zip(cycle, cycle[1:]):
            reference = graph.edges[module][dep]
            where = f"{reference.file.relative_to(src)}:{reference.line}"
            through = "" if reference.name == dep else f" (lib.rs imports it from {dep})"
            print(f"  {module} -> {dep}: {reference.name}{through}, {where}")
    if found:
        sys.exit(1)
    print("no cycle")


if __name__ == "__main__":
    main()
