"""Fail when an app imports another app's private name.

import-linter (the `[tool.importlinter]` contracts in pyproject.toml) enforces which app may
import which, but it sees modules, not names. A name that starts with an underscore is an
app's own business: another app that imports it (`from crm.forms import _mine_first`), or
reaches it through a module (`import crm.forms` then `crm.forms._mine_first`), breaks as
soon as the owner renames it. This checker finds both, plus private modules
(`crm._internal`), with `ast` and no imports, so it is fast and needs no Django.

Within one app private names are fine; relative imports never leave their app. `tests/` and
`bench/` are not apps and are not checked. Attributes of an imported object
(`Deal._meta`) are not the module's names and are not checked either.

Usage: python tools/check_private_imports.py [--root DIR] [APP ...]
Without APP, the apps are the `root_packages` of `[tool.importlinter]` in DIR/pyproject.toml.
Exit status 1 and one line per offence when any is found.
"""

from __future__ import annotations

import argparse
import ast
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Offence:
    path: Path
    line: int
    app: str
    reference: str

    def __str__(self) -> str:
        return (
            f"{self.path}:{self.line}: {self.app} uses {self.reference}, "
            f"a private name of another app (make it public or move it)"
        )


def is_private(name: str) -> bool:
    """`_x` and `__x` are private; dunders (`__all__`, `__init__`) are not."""
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


class Checker:
    def __init__(self, root: Path, apps: list[str]) -> None:
        self.root = root
        self.apps = set(apps)

    def is_module(self, dotted: str) -> bool:
        path = self.root.joinpath(*dotted.split("."))
        return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()

    def private_part(self, dotted: str) -> str | None:
        """The first private segment of a dotted reference into an app, if any.

        Module segments are checked, and the first name after the last module; what comes
        after that name is an attribute of an object, not the module's business.
        """
        parts = dotted.split(".")
        for index, part in enumerate(parts):
            if is_private(part):
                return ".".join(parts[: index + 1])
            if index > 0 and not self.is_module(".".join(parts[: index + 1])):
                return None
        return None

    def check_file(self, path: Path, app: str) -> list[Offence]:
        tree = ast.parse(path.read_bytes(), filename=str(path))
        offences: list[Offence] = []
        # Local names bound to another app's module, e.g. {"crm": "crm", "cv": "crm.views"}.
        modules: dict[str, str] = {}

        def other_app(dotted: str) -> bool:
            top = dotted.split(".", 1)[0]
            return top in self.apps and top != app

        def report(node: ast.AST, dotted: str) -> None:
            private = self.private_part(dotted)
            if private:
                offences.append(Offence(path, node.lineno, app, private))

        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if not other_app(alias.name):
                        continue
                    report(node, alias.name)
                    if alias.asname:
                        modules[alias.asname] = alias.name
                    else:
                        top = alias.name.split(".", 1)[0]
                        modules[top] = top
            elif isinstance(node, ast.ImportFrom):
                if node.level or not node.module or not other_app(node.module):
                    continue
                for alias in node.names:
                    if alias.name == "*":
                        report(node, node.module)
                        continue
                    dotted = f"{node.module}.{alias.name}"
                    report(node, dotted)
                    if self.is_module(dotted):
                        modules[alias.asname or alias.name] = dotted

        if modules:
            for node in ast.walk(tree):
                if not isinstance(node, ast.Attribute) or not isinstance(node.ctx, ast.Load):
                    continue
                chain: list[str] = []
                current: ast.expr = node
                while isinstance(current, ast.Attribute):
                    chain.append(current.attr)
                    current = current.value
                if isinstance(current, ast.Name) and current.id in modules:
                    dotted = ".".join([modules[current.id], *reversed(chain)])
                    report(node, dotted)
        # One offence per place: `a.b._c.d` is walked as `a.b._c.d` and as `a.b._c`.
        return sorted(set(offences), key=lambda o: (str(o.path), o.line, o.reference))

    def check(self) -> list[Offence]:
        offences: list[Offence] = []
        for app in sorted(self.apps):
            base = self.root / app
            for path in sorted(base.rglob("*.py")):
                offences.extend(self.check_file(path, app))
        return offences


def configured_apps(root: Path) -> list[str]:
    with (root / "pyproject.toml").open("rb") as file:
        config = tomllib.load(file)
    return list(config["tool"]["importlinter"]["root_packages"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="the repository root")
    parser.add_argument("apps", nargs="*", help="app packages (default: pyproject's)")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    apps = args.apps or configured_apps(root)
    offences = Checker(root, apps).check()
    for offence in offences:
        print(offence.__str__().replace(str(root) + "/", ""))
    if offences:
        print(f"{len(offences)} private cross-app import(s) found.", file=sys.stderr)
        return 1
    print(f"No private cross-app imports in {', '.join(sorted(apps))}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
