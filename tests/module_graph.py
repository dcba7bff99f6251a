#!/usr/bin/env python3
"""The import graph between the crate's top-level modules (src/<module>.rs or
src/<module>/), read from the `crate::`, `super::` and (in src/main.rs)
`mailauth_exporter::` paths of every source file, test modules included.

Prints the graph, one module a line with what it imports, and fails (exit 1) when
- two or more top-level modules import each other, directly or round a longer loop, or
- `checks/` or `resolver/` imports a module above them (FORBIDDEN below): the checks are
  pure functions of DNS answers and the resolver is the transport under them, so that both
  can be tested, reused and read without the config, the mail probe or the service.

Why a script and not a crate: it runs anywhere Python 3 does, in a second, from CI
(tests/run.sh) or by hand: `python3 tests/module_graph.py`.

Comments and string literals are removed before paths are read, so a doc link or a
message naming `crate::x` is not an edge; a path written with `use` or inline counts.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
LIB_NAME = "mailauth_exporter"

# Lower layers that must not reach up: module -> the modules it may not import.
FORBIDDEN = {
    "checks": {"config", "mail", "service", "server", "commands", "metrics"},
    "resolver": {"config", "mail", "service", "server", "commands", "metrics", "checks"},
}

# Edges known to be wrong and being removed, each with the reason it is still here. An
# edge listed here is neither a cycle nor a forbidden import; keep this list empty once
# the work named beside each edge has landed.
# Known edges that break the rules, each with why and who removes it. Empty: keep it so.
ALLOWED: set = set()


def strip_comments_and_strings(text):
    """The source with comments, string, byte-string, raw-string and char literals
    blanked (newlines kept), so that only code is read."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    if text[i] == "\n":
                        out.append("\n")
                    i += 1
        elif re.match(r'b?r#*"', text[i:i + 260]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'b?r(#*)"', text[i:])
            end = text.find('"' + m.group(1), i + m.end())
            end = n if end < 0 else end + 1 + len(m.group(1))
            out.append("\n" * text.count("\n", i, end) + '""')
            i = end
        elif c == '"' or (c == "b" and text.startswith('b"', i) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_"))):
            j = i + (2 if c == "b" else 1)
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append("\n" * text.count("\n", i, j) + '""')
            i = j + 1
        elif c == "'":
            # A char literal ('a', '\n', '\u{1F600}'), not a lifetime ('a).
            m = re.match(r"'(\\u\{[0-9a-fA-F]+\}|\\.|[^\\'])'", text[i:])
            if m:
                out.append("' '")
                i += m.end()
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def module_path(path):
    """The module path of a source file: src/checks/dmarc/parse.rs -> [checks, dmarc, parse]."""
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "mod":
        parts.pop()
    if parts in (["lib"], ["main"]):
        return []
    return parts


def first_segments(group):
    """The first path segment of each item of a `{a::b, c, d::{e, f}}` group."""
    depth, item, items = 0, "", []
    for ch in group:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == "," and depth == 0:
            items.append(item)
            item = ""
        else:
            item += ch
    items.append(item)
    out = []
    for it in items:
        m = re.match(r"\s*([A-Za-z_][A-Za-z0-9_]*)", it)
        if m and m.group(1) != "self":
            out.append(m.group(1))
    return out


def brace_group(code, start):
    """The text inside the braces that open at `start`."""
    depth = 0
    for j in range(start, len(code)):
        if code[j] == "{":
            depth += 1
        elif code[j] == "}":
            depth -= 1
            if depth == 0:
                return code[start + 1:j]
    return code[start + 1:]


def names_at(code, pos):
    """The names a path continues with at `pos`: one (`checks::dmarc`) or a group
    (`{checks::dmarc, config}`)."""
    if code.startswith("{", pos):
        return first_segments(brace_group(code, pos))
    return first_segments(re.match(r"[A-Za-z0-9_]*", code[pos:]).group(0))


def imported_modules(path, code, modules):
    """The top-level modules named by the paths in one file."""
    mod = module_path(path)
    found = set()
    roots = [r"\bcrate::"]
    if path == SRC / "main.rs":
        roots.append(r"\b" + LIB_NAME + "::")
    for root in roots:
        for m in re.finditer(root + r"\s*", code):
            found.update(n for n in names_at(code, m.end()) if n in modules)
    # `super::` (possibly repeated) climbs from the file's module; it leaves the top-level
    # module only from a top-level file.
    for m in re.finditer(r"(?<![A-Za-z0-9_:])((?:super\s*::\s*)+)", code):
        ups = m.group(1).count("super")
        # The parent of a module file is one up; a mod.rs stands for its folder.
        base = mod[: len(mod) - ups] if len(mod) >= ups else None
        if base is None:
            continue
        if base:
            found.add(base[0])
            continue
        found.update(n for n in names_at(code, m.end()) if n in modules)
    return found


def top_level_modules():
    mods = set()
    for p in SRC.iterdir():
        if p.is_dir() and ((p / "mod.rs").exists() or any(p.glob("*.rs"))):
            mods.add(p.name)
        elif p.suffix == ".rs" and p.stem not in ("lib", "main"):
            mods.add(p.stem)
    return mods


def build_graph():
    modules = top_level_modules()
    graph = {m: set() for m in modules | {"main"}}
    for path in sorted(SRC.rglob("*.rs")):
        mod = module_path(path)
        if path == SRC / "lib.rs":
            continue
        owner = "main" if path == SRC / "main.rs" else mod[0]
        code = strip_comments_and_strings(path.read_text(encoding="utf-8"))
        for target in imported_modules(path, code, modules):
            if target != owner:
                graph[owner].add(target)
    return graph


def cycles(graph, ignore):
    """The strongly connected components of more than one module (Tarjan), edges in
    `ignore` left out."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if (v, w) in ignore:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def main():
    graph = build_graph()
    print("module graph (module -> what it imports):")
    for m in sorted(graph):
        print(f"  {m} -> {', '.join(sorted(graph[m])) or '(nothing)'}")
    problems = []
    for comp in cycles(graph, ALLOWED):
        edges = [f"{a} -> {b}" for a in comp for b in sorted(graph[a]) if b in comp and (a, b) not in ALLOWED]
        problems.append(f"cycle between {', '.join(comp)}: {'; '.join(edges)}")
    for low, banned in sorted(FORBIDDEN.items()):
        for target in sorted(graph.get(low, set()) & banned):
            if (low, target) not in ALLOWED:
                problems.append(f"{low} imports {target}, a layer above it")
    for edge in sorted(ALLOWED):
        if edge[1] not in graph.get(edge[0], set()):
            problems.append(f"allow-list edge {edge[0]} -> {edge[1]} is gone: remove it from ALLOWED")
        else:
            print(f"allowed for now: {edge[0]} -> {edge[1]}")
    for p in problems:
        print(f"module_graph: {p}", file=sys.stderr)
    print(f"module_graph: {len(graph)} modules, {sum(map(len, graph.values()))} edges, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
