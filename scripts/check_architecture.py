#!/usr/bin/python3
"""Checks that docs/architecture.md's module graph is the build's.

    scripts/check_architecture.py BUILD_DIR

Reads the text block of docs/architecture.md that lists, per module, the modules it links
("core -> contract broker ..."), asks CMake for the target graph of BUILD_DIR (a configured
build tree, `cmake --graphviz`), and compares the direct links between the bellhop_<module>
libraries with it. Also checks the rule the picture states: no flow links another flow.
Exits 0 when they agree; otherwise prints each difference and exits 1.
"""
import os
import re
import subprocess
import sys
import tempfile

FLOWS = {"inbound", "outbound", "transport", "dashboard", "realtime", "console"}
# Build helpers, not modules: Asio compiled once, the precompiled headers, test support.
NOT_MODULES = {"asio", "pch", "pch_usage", "test_pch", "test_support", "fuzz_parsers"}


def documented(root):
    text = open(os.path.join(root, "docs", "architecture.md"), encoding="utf-8").read()
    m = re.search(r"target\s+graph, so they stay true\):\n\n```text\n(.*?)```", text, re.S)
    if not m:
        sys.exit("docs/architecture.md: the module list (```text block after 'target graph, so "
                 "they stay true):') is missing")
    edges = set()
    modules = set()
    for line in m.group(1).splitlines():
        if "->" not in line:
            continue
        left, right = line.split("->", 1)
        module = left.strip()
        modules.add(module)
        for dep in right.split():
            edges.add((module, dep))
    return modules, edges


def built(build_dir):
    with tempfile.TemporaryDirectory() as tmp:
        dot = os.path.join(tmp, "deps.dot")
        subprocess.run(["cmake", f"--graphviz={dot}", "."], cwd=build_dir, check=True,
                       stdout=subprocess.DEVNULL)
        text = open(dot, encoding="utf-8").read()
    edges = set()
    modules = set()
    for a, b in re.findall(r"// bellhop_(\w+) -> bellhop_(\w+)", text):
        if a in NOT_MODULES or b in NOT_MODULES or a.endswith("_test") or a == "process_test":
            continue
        modules.update((a, b))
        edges.add((a, b))
    for label in re.findall(r'label = "bellhop_(\w+)", shape = octagon', text):
        if label not in NOT_MODULES:
            modules.add(label)
    return modules, edges


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__.strip().splitlines()[2].strip())
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
    doc_modules, doc_edges = documented(root)
    build_modules, build_edges = built(sys.argv[1])
    problems = []
    for m in sorted(build_modules - doc_modules):
        problems.append(f"module {m} is built but not in docs/architecture.md")
    for m in sorted(doc_modules - build_modules):
        problems.append(f"module {m} is in docs/architecture.md but not built")
    for a, b in sorted(build_edges - doc_edges):
        problems.append(f"the build links {a} -> {b}; docs/architecture.md does not say so")
    for a, b in sorted(doc_edges - build_edges):
        problems.append(f"docs/architecture.md says {a} -> {b}; the build does not link it")
    for a, b in sorted(build_edges):
        if a in FLOWS and b in FLOWS:
            problems.append(f"flow {a} links flow {b}: flows must not depend on each other")
    for p in problems:
        print("architecture: " + p)
    if problems:
        return 1
    print(f"architecture: {len(build_modules)} modules, {len(build_edges)} links, "
          "as docs/architecture.md draws them")
    return 0


if __name__ == "__main__":
    sys.exit(main())
