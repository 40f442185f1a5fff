"""Every public function, method and class of ``harness/`` has a docstring (issue 33).

Public: a name that does not start with ``_``, defined at module level or in the body of a public class
(a function nested in a function, and anything in a private class, is not API). Only the source is
parsed: nothing is imported, nothing runs.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def undocumented(source: str) -> list[tuple[int, str]]:
    """``(line, qualified name)`` of each public function, method or class of ``source`` without a
    docstring, in source order (a class before its methods)."""
    found = []

    def walk(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, DEFINITIONS) and not child.name.startswith("_"):
                if ast.get_docstring(child) is None:
                    found.append((child.lineno, prefix + child.name))
                if isinstance(child, ast.ClassDef):
                    walk(child, f"{prefix}{child.name}.")

    walk(ast.parse(source), "")
    return found


def test_every_public_function_method_and_class_in_harness_has_a_docstring():
    missing = [
        f"{path.relative_to(ROOT)}:{line}: {name}"
        for path in sorted((ROOT / "harness").rglob("*.py"))
        for line, name in undocumented(path.read_text())
    ]
    assert not missing, f"{len(missing)} public functions, methods or classes have no docstring:\n" + "\n".join(missing)


def test_undocumented_finds_public_definitions_only():
    source = '''
def public(): pass
def _private(): pass
async def coroutine(): pass
class Public:
    def method(self): pass
    def documented(self):
        """Documented."""
    def _helper(self): pass
    def __eq__(self, other): pass
    class Inner:
        def deep(self): pass
class _Private:
    def method(self): pass
def outer():
    """Documented."""
    def nested(): pass
'''
    assert undocumented(source) == [
        (2, "public"),
        (4, "coroutine"),
        (5, "Public"),
        (6, "Public.method"),
        (11, "Public.Inner"),
        (12, "Public.Inner.deep"),
    ]
