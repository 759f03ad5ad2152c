#!/usr/bin/env python3
"""Import cycles between the top-level modules of each crate.

Rust accepts cycles between modules of one crate silently; this check does
not. For every crate under crates/, it collects each top-level module's
references to `crate::<other module>` (in `use` items and paths), ignoring
tests (`tests.rs`, `*_tests.rs` and `mod tests` blocks), and reports every
strongly connected component with more than one module. Exit status 1 when
there is one.
"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates")
REF = re.compile(r"\bcrate::([a-z_][a-z0-9_]*)")
USE_GROUP = re.compile(r"\buse\s+crate::\{([^;]*)\};", re.S)


def strip_tests(text):
    # Drop `#[cfg(test)] mod x { ... }` blocks by brace matching.
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", text):
        if m.start() < i:
            continue
        out.append(text[i : m.start()])
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        i = j
    out.append(text[i:])
    return "".join(out)


def module_of(src, path):
    rel = os.path.relpath(path, src)
    first = rel.split(os.sep)[0]
    return os.path.splitext(first)[0]


def crate_graph(src):
    graph = {}
    for dirpath, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs") or f == "tests.rs" or f.endswith("_tests.rs"):
                continue
            path = os.path.join(dirpath, f)
            module = module_of(src, path)
            if module in ("lib", "main"):
                continue
            text = strip_tests(open(path, encoding="utf-8").read())
            # Comments (doc links among them) are not imports.
            text = re.sub(r"//[^\n]*", "", text)
            targets = set(REF.findall(text))
            for group in USE_GROUP.findall(text):
                for item in group.split(","):
                    name = item.strip().split("::")[0].strip()
                    if re.fullmatch(r"[a-z_][a-z0-9_]*", name):
                        targets.add(name)
            graph.setdefault(module, set()).update(t for t in targets if t != module)
    return graph


def sccs(graph):
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return [c for c in out if len(c) > 1]


def main():
    bad = False
    for crate in sorted(os.listdir(ROOT)):
        src = os.path.join(ROOT, crate, "src")
        if not os.path.isdir(src):
            continue
        for comp in sccs(crate_graph(src)):
            bad = True
            print(f"{crate}: import cycle between modules {', '.join(comp)}")
    if not bad:
        print("no import cycles between the modules of any crate")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
