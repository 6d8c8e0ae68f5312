#!/usr/bin/env python3
"""Builds the Python package's API reference with pdoc into OUT_DIR. Fails (exit 1) on any
warning, on any public class, function, method or attribute without a docstring, and on any
public function or method, or attribute of a compiled class, without types.

    python scripts/python_reference.py OUT_DIR

Run it with a Python that has bucketsync and pdoc installed (scripts/test.sh pins pdoc). It is
`pdoc bucketsync -o OUT_DIR` with two differences:

- The types come from the stubs. pdoc applies a module's own stubs only (bucketsync/__init__.pyi,
  which the package has not), while bucketsync's classes are re-exported from the compiled
  bucketsync._bucketsync, whose stubs are _bucketsync.pyi: plain pdoc renders them with no
  types (`sync(self, /, progress=None)`). Here _bucketsync.pyi is read as bucketsync's stubs.
- The docstrings are the package's own (help() shows them: the compiled names' come from the
  `///` comments in bindings-python/src); a stub's docstring is shown only where the package
  has none. pdoc would prefer the stub's, a shorter one in places (Vault's is one sentence).
- A compiled class lists its members in the stubs' order (pdoc would take the compiled class's,
  which for attributes is no order at all).
"""

import ast
import inspect
import sys
import warnings
from pathlib import Path


def public(module):
    """What the reference documents: the module, its public names, and each class's own
    public members."""
    yield module
    for member in module.members.values():
        if member.name.startswith("_"):
            continue
        yield member
        if member.kind == "class":
            yield from (m for m in member.own_members if not m.name.startswith("_"))


def stub_order(stubs):
    """Each class of the stubs, with its members' names in the order the stubs declare them."""
    order = {}
    for node in ast.parse(stubs.read_text()).body:
        if isinstance(node, ast.ClassDef):
            order[node.name] = [
                item.name if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
                else item.target.id
                for item in node.body
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
                or (isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name))
            ]
    return order


def problems(module):
    """Public names pdoc shows without a docstring, or without types where the stubs give them
    (pdoc gives a class attribute the docstring of the one it overrides: each error's category
    has Error.category's)."""
    empty = inspect.Parameter.empty
    found = []
    for doc in public(module):
        if not doc.docstring:
            found.append(f"no docstring: {doc.fullname}")
        if doc.kind == "function":
            sig = doc.signature_without_self
            untyped = [p for p in sig.parameters.values() if p.annotation is empty]
            if untyped or sig.return_annotation is empty:
                found.append(f"no types: {doc.fullname}{sig}")
        elif doc.kind == "variable" and "." in doc.qualname:
            owner = module.get(doc.qualname.rsplit(".", 1)[0])
            # Compiled classes say module="bucketsync"; the errors are Python (bucketsync.errors).
            if owner.obj.__module__ == "bucketsync" and doc.annotation is empty:
                found.append(f"no types: {doc.fullname}")
    return found


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = Path(sys.argv[1])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")

        import pdoc
        import pdoc.doc
        import pdoc.doc_pyi

        import bucketsync

        # The package's own docstrings, read before the stubs are in play.
        plain = {doc.fullname: doc.docstring for doc in public(pdoc.doc.Module(bucketsync))}

        stubs = Path(bucketsync.__file__).with_name("_bucketsync.pyi")
        if not stubs.is_file():
            sys.exit(f"no type stubs at {stubs}")
        find_stub_file = pdoc.doc_pyi.find_stub_file

        def stubs_of(module_name):
            return stubs if module_name == "bucketsync" else find_stub_file(module_name)

        pdoc.doc_pyi.find_stub_file = stubs_of
        # Module.from_name is cached: pdoc.pdoc() below renders this very object.
        module = pdoc.doc.Module.from_name("bucketsync")
        for name, names in stub_order(stubs).items():
            cls = module.members.get(name)
            if cls is not None and cls.kind == "class":
                rank = {n: i for i, n in enumerate(names)}
                cls.members = dict(
                    sorted(cls.members.items(), key=lambda item: rank.get(item[0], len(rank)))
                )
        for doc in public(module):
            if plain.get(doc.fullname):
                doc.docstring = plain[doc.fullname]
        pdoc.pdoc("bucketsync", output_directory=out)
        found = problems(module)

    for w in caught:
        print(f"warning: {w.category.__name__}: {w.message} ({w.filename}:{w.lineno})",
              file=sys.stderr)
    for line in found:
        print(line, file=sys.stderr)
    if caught or found:
        sys.exit(f"pdoc {pdoc.__version__}: {len(caught)} warnings, {len(found)} problems")
    print(f"pdoc {pdoc.__version__}: {out / 'bucketsync.html'}: no warnings, every public name"
          " with its docstring and types")


if __name__ == "__main__":
    main()
