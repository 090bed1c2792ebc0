#!/usr/bin/python3
"""Shape of the C++ code, for docs/architecture.md's before/after table.

    scripts/code_metrics.py [repo root]   (default: the repository this script is in)

Prints, over the library modules (every top-level folder with a CMakeLists.txt and C++ sources,
tests/, bench/, fuzz/ and examples/ left out):
  - lines of C++ per module and the largest module's share of them;
  - files (and translation units) per module;
  - include arrows: distinct (file -> project header) #include edges, and the distinct
    module -> module edges they add up to;
  - the longest functions (lines from the signature to the closing brace, by a brace count
    over code with comments and strings blanked out: a heuristic, good to a line or two).
Repeated blocks are counted by the `duplicates` tool, not here.
"""
import os
import re
import sys

SKIP = {"tests", "bench", "fuzz", "examples", "build", "docs", "packaging", "cmake", "scripts",
        "node_modules"}
EXTS = (".cpp", ".hpp", ".h", ".hpp.in")


def modules(root):
    out = {}
    for top in sorted(os.listdir(root)):
        path = os.path.join(root, top)
        if top in SKIP or top.startswith(".") or not os.path.isdir(path):
            continue
        if not os.path.exists(os.path.join(path, "CMakeLists.txt")):
            continue
        # A module folder may hold sub-modules (a folder with its own CMakeLists.txt).
        subs = [d for d in sorted(os.listdir(path))
                if os.path.isdir(os.path.join(path, d))
                and os.path.exists(os.path.join(path, d, "CMakeLists.txt"))]
        out[top] = (path, [os.path.join(path, s) for s in subs])
        for s in subs:
            out[top + "/" + s] = (os.path.join(path, s), [])
    return out


def files_of(path, exclude):
    for dirpath, dirnames, filenames in os.walk(path):
        if any(dirpath == e or dirpath.startswith(e + os.sep) for e in exclude):
            continue
        dirnames[:] = [d for d in dirnames if d not in ("node_modules",)]
        for f in filenames:
            if f.endswith(EXTS):
                yield os.path.join(dirpath, f)


def blank(text):
    """Comments, string and char literals replaced by spaces (newlines kept)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif text.startswith('R"', i):
            m = re.match(r'R"([^(\s]*)\(', text[i:])
            if m:
                end = text.find(")" + m.group(1) + '"', i)
                j = n if end < 0 else end + len(m.group(1)) + 2
                out.append(re.sub(r"[^\n]", " ", text[i:j]))
                i = j
            else:
                out.append(c)
                i += 1
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(" " * (j - i))
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


SIG = re.compile(r"^[A-Za-z_~][\w:<>,&*\s~\[\]]*\b([\w:~]+(?:operator\S*)?)\s*\([^;{}]*\)"
                 r"[^;{}]*\{\s*$")
NOT_FN = re.compile(r"^\s*(namespace|class|struct|enum|union|if|for|while|switch|else|do|try|"
                    r"catch|return)\b")


def functions(path):
    lines = blank(open(path, encoding="utf-8", errors="replace").read()).split("\n")
    i = 0
    while i < len(lines):
        # A signature may span lines: join up to 6 lines until one ends with '{'.
        if lines[i][:1].strip() and not NOT_FN.match(lines[i]) and "(" in lines[i]:
            joined = lines[i]
            j = i
            while not joined.rstrip().endswith("{") and j < i + 6 and j + 1 < len(lines) \
                    and ";" not in joined:
                j += 1
                joined += " " + lines[j].strip()
            m = SIG.match(joined)
            if m and joined.rstrip().endswith("{"):
                depth = 0
                for k in range(i, len(lines)):
                    depth += lines[k].count("{") - lines[k].count("}")
                    if depth == 0 and k > j - 1 and "}" in lines[k]:
                        yield (k - i + 1, m.group(1), i + 1)
                        i = k
                        break
        i += 1


INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]([^>"]+)[>"]', re.M)


def main():
    root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                           os.path.join(os.path.dirname(__file__), ".."))
    mods = modules(root)
    by_header = {}  # include spelling -> (module, file)
    per = {}
    for name, (path, subs) in mods.items():
        files = sorted(files_of(path, subs))
        per[name] = files
        for f in files:
            rel = os.path.relpath(f, path)
            by_header.setdefault(os.path.basename(f), []).append((name, f))
            inc = re.sub(r"^(include|src)/", "", rel)
            by_header.setdefault(inc, []).append((name, f))
    total = 0
    sizes = {}
    for name, files in per.items():
        sizes[name] = sum(open(f, encoding="utf-8", errors="replace").read().count("\n")
                          for f in files)
        total += sizes[name]
    print(f"{'module':<22}{'lines':>7}{'share':>7}{'files':>7}{'units':>7}")
    for name in sorted(per, key=lambda m: -sizes[m]):
        units = sum(1 for f in per[name] if f.endswith(".cpp"))
        print(f"{name:<22}{sizes[name]:>7}{100.0 * sizes[name] / total:>6.1f}%"
              f"{len(per[name]):>7}{units:>7}")
    print(f"{'total':<22}{total:>7}")

    file_edges = set()
    module_edges = set()
    for name, files in per.items():
        for f in files:
            for inc in INCLUDE.findall(open(f, encoding="utf-8", errors="replace").read()):
                targets = by_header.get(inc) or by_header.get(os.path.basename(inc)) \
                    if not inc.startswith("bellhop/") else by_header.get(inc)
                if inc.startswith("bellhop/"):
                    targets = by_header.get(inc.split("/", 1)[1] if False else inc)
                    if not targets:
                        # bellhop/<module>/x.hpp lives at <module>/include/bellhop/<module>/x.hpp
                        targets = [(m, g) for m, fs in per.items() for g in fs
                                   if g.endswith("/include/" + inc)]
                if not targets:
                    continue
                same = [t for t in targets if t[0] == name]
                module, target = (same or targets)[0]
                if target != f:
                    file_edges.add((f, target))
                if module != name:
                    module_edges.add((name, module))
    print(f"include arrows between project files: {len(file_edges)}")
    for name in sorted(per):
        inside = sum(1 for a, b in file_edges if a in per[name] and b in per[name])
        print(f"  inside {name}: {inside}")
    print(f"module -> module arrows: {len(module_edges)}")
    for a, b in sorted(module_edges):
        print(f"  {a} -> {b}")

    fns = []
    for name, files in per.items():
        for f in files:
            if f.endswith(".cpp"):
                for length, fn, line in functions(f):
                    fns.append((length, os.path.relpath(f, root), line, fn))
    fns.sort(reverse=True)
    print("longest functions (lines):")
    for length, f, line, fn in fns[:12]:
        print(f"  {length:>4}  {fn}  {f}:{line}")
    over = sum(1 for x in fns if x[0] > 60)
    print(f"functions over 60 lines: {over} of {len(fns)}")


if __name__ == "__main__":
    main()
