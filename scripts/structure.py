#!/usr/bin/env python3
"""The code's shape, checked: import circles, the agent's layers, who locks a status,
folder and file sizes. Reads `use` lines and `crate::`/`super::`/`self::` paths; a path
resolves to the deepest module file it names, so `use super::X` of something `mod.rs`
re-exports ties the file to that `mod.rs`. Exit 1 on any breach, each printed with its fix.

    scripts/structure.py            # check
    scripts/structure.py --graph    # also print every file's imports
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The agent's layers, top to bottom: a file may import only from its own layer or below.
# Paths are relative to src/agent/; a folder covers everything in it.
# The first match wins, so a folder's own lower file (what the daemon stores of it, e.g.
# `lease/leases.rs`) is listed before its folder.
AGENT_LAYERS = [
    ["mod.rs", "http"],
    ["lease/leases.rs", "vault_watch/state.rs", "keep_alive/registry.rs"],
    ["keep_alive", "human", "vault_watch", "lease", "reload.rs"],
    ["daemon.rs"],
    ["credential", "alerts", "access", "metrics.rs", "error.rs"],
    ["config"],
]
# Layer index of each entry: the files listed second sit with the third-from-top layer.
LAYER_OVERRIDE = {"lease/leases.rs": 4, "vault_watch/state.rs": 4, "keep_alive/registry.rs": 4}
MAX_FILES_PER_FOLDER = 12
MAX_LINES_BEFORE_TESTS = 600


def rust_files(base):
    for dirpath, dirs, files in os.walk(base):
        dirs.sort()
        for f in sorted(files):
            if f.endswith(".rs"):
                yield os.path.join(dirpath, f)


def module_of(path, src):
    """src/agent/credential/mod.rs -> ['agent', 'credential']; src/lib.rs -> []."""
    rel = os.path.relpath(path, src)[:-3].split(os.sep)
    if rel[-1] in ("mod", "lib", "main"):
        rel = rel[:-1]
    return rel


def file_of(module, src, files):
    """The file that holds `module`, or None if it is an item, not a module."""
    base = os.path.join(src, *module) if module else None
    candidates = [base + ".rs", os.path.join(base, "mod.rs")] if module else [
        os.path.join(src, "lib.rs"), os.path.join(src, "main.rs")]
    for c in candidates:
        if c in files:
            return c
    return None


def strip(text):
    """Code without comments, strings and the `#[cfg(test)] mod tests` block."""
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r'r#*"(?:.|\n)*?"#*', '""', text)
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)
    text = re.sub(r"pub\(in [\w:]+\)", "pub", text)
    m = re.search(r"#\[cfg\(test\)\]\s*mod\s+tests\b", text)
    if m:
        text = text[: m.start()]
    return text


def expand_use(tree):
    """`a::{b, c::{d, e}}` -> ['a::b', 'a::c::d', 'a::c::e']."""
    tree = re.sub(r"\s+as\s+\w+", "", tree)
    tree = re.sub(r"\s+", "", tree)
    out = []

    def walk(prefix, s):
        i = s.find("{")
        if i < 0:
            out.append(prefix + s)
            return
        head = s[:i]
        body = s[i + 1 : s.rfind("}")]
        depth, part, parts = 0, "", []
        for ch in body:
            if ch == "," and depth == 0:
                parts.append(part)
                part = ""
                continue
            depth += ch == "{"
            depth -= ch == "}"
            part += ch
        parts.append(part)
        for p in parts:
            if p:
                walk(prefix + head, p)

    walk("", tree)
    return out


def resolve(path, module, src, files):
    segs = [s for s in path.split("::") if s]
    if not segs:
        return None
    if segs[0] == "crate":
        base, rest = [], segs[1:]
    elif segs[0] in ("super", "self"):
        base = list(module)
        rest = segs
        while rest and rest[0] in ("super", "self"):
            if rest[0] == "super":
                base = base[:-1]
            rest = rest[1:]
    else:
        return None
    found = file_of(base, src, files)
    cur = list(base)
    for s in rest:
        if s in ("*", "self"):
            break
        f = file_of(cur + [s], src, files)
        if f is None:
            break
        cur.append(s)
        found = f
    return found


def imports(path, src, files):
    text = strip(open(path, encoding="utf-8").read())
    module = module_of(path, src)
    # A file's own `mod x;` children are where it lives, not imports; but `pub use x::Y`
    # in a mod.rs is an import of x.
    children = set(re.findall(r"\bmod\s+(\w+)\s*;", text))
    targets = set()
    for m in re.finditer(r"\buse\s+([^;]+);", text):
        for p in expand_use(m.group(1)):
            if p.split("::")[0] in children:
                p = "self::" + p
            t = resolve(p, module, src, files)
            if t:
                targets.add(t)
    # Paths in the code itself (the `use` lines were read above).
    code = re.sub(r"\buse\s+[^;]+;", "", text)
    for m in re.finditer(r"(?<![\w:])((?:crate|super|self)(?:::\w+)+)", code):
        t = resolve(m.group(1), module, src, files)
        if t:
            targets.add(t)
    for m in re.finditer(r"(?<![\w:])(\w+)((?:::\w+)+)", code):
        if m.group(1) not in children:
            continue
        t = resolve("self::" + m.group(1) + m.group(2), module, src, files)
        if t:
            targets.add(t)
    targets.discard(path)
    return targets


def sccs(graph):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strong(w)
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
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def layer_of(rel):
    for i, layer in enumerate(AGENT_LAYERS):
        for entry in layer:
            if rel == entry or rel.startswith(entry + "/"):
                return LAYER_OVERRIDE.get(entry, i)
    return None


def lines_before_tests(path):
    n = 0
    for line in open(path, encoding="utf-8"):
        if re.match(r"\s*#\[cfg\(test\)\]", line):
            break
        n += 1
    return n


def main():
    show = "--graph" in sys.argv
    problems = []
    for crate_src in ("src", "src-tauri/src"):
        src = os.path.join(ROOT, crate_src)
        files = set(rust_files(src))
        graph = {f: imports(f, src, files) for f in files}
        if show:
            for f in sorted(graph):
                print(os.path.relpath(f, ROOT), "->",
                      ", ".join(os.path.relpath(t, ROOT) for t in sorted(graph[f])))
        for comp in sccs(graph):
            names = ", ".join(os.path.relpath(c, ROOT) for c in comp)
            problems.append(f"import circle: {names}; move the shared type or helper "
                            "into a file below both, or import it from its own file "
                            "rather than a re-export")
        for f in sorted(files):
            n = lines_before_tests(f)
            if n > MAX_LINES_BEFORE_TESTS:
                problems.append(f"{os.path.relpath(f, ROOT)}: {n} lines before its tests "
                                f"(at most {MAX_LINES_BEFORE_TESTS}); split it by concept")
        if crate_src != "src":
            continue
        agent = os.path.join(src, "agent")
        for f in sorted(files):
            if not f.startswith(agent + os.sep):
                continue
            rel = os.path.relpath(f, agent).replace(os.sep, "/")
            mine = layer_of(rel)
            if mine is None:
                problems.append(f"src/agent/{rel}: in no layer; put it in a folder of "
                                "the layer rule (scripts/structure.py AGENT_LAYERS)")
                continue
            for t in sorted(graph[f]):
                if not t.startswith(agent + os.sep):
                    continue
                trel = os.path.relpath(t, agent).replace(os.sep, "/")
                theirs = layer_of(trel)
                if theirs is not None and theirs < mine:
                    problems.append(f"src/agent/{rel} imports src/agent/{trel}, a higher "
                                    "layer; move what it needs down or pass it in")
            text = strip(open(f, encoding="utf-8").read())
            if re.search(r"\bstatus\s*\.\s*(lock|read|write)\s*\(", text) and not rel.startswith("credential/"):
                problems.append(f"src/agent/{rel} locks a credential's status; only "
                                "agent/credential/ may (add a method there)")
        for dirpath, dirs, fs in os.walk(agent):
            count = len([x for x in fs if x.endswith(".rs") and x != "mod.rs"])
            if count > MAX_FILES_PER_FOLDER:
                problems.append(f"{os.path.relpath(dirpath, ROOT)}: {count} files (at most "
                                f"{MAX_FILES_PER_FOLDER}); split it by concept")
    for p in problems:
        print(p)
    if problems:
        print(f"structure: {len(problems)} problem(s)")
        return 1
    print("structure: no import circles, agent layers point down, status locked only in "
          "agent/credential/, folders and files within their sizes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
