"""The app graph is enforced: `make lint` fails on an import that goes down the layers the
wrong way (crm importing pipelines) and on an import of another app's private name.

Each check runs the real tools the way `make lint` does, on a copy of the apps with one
bad import injected, and on the real tree, which must pass. See ARCHITECTURE.md."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from setuptools import find_packages

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
# The project's apps: every top-level package with an AppConfig.
# Apps at the root, and packages of apps (integrations/api, integrations/webhooks...).
APPS = tuple(
    sorted(
        {p.relative_to(ROOT).parts[0] for p in [*ROOT.glob("*/apps.py"), *ROOT.glob("*/*/apps.py")]}
        - {"tests"}
    )
)
CHECKER = ROOT / "tools" / "check_private_imports.py"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """import-linter with the contracts of `root`'s pyproject.toml, on `root`'s apps."""
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", str(root / "pyproject.toml")],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )


def check_private_imports(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(CHECKER), "--root", str(root)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the apps' Python files and the pyproject.toml that holds the contracts."""
    for app in APPS:
        shutil.copytree(
            ROOT / app,
            tmp_path / app,
            ignore=lambda _dir, names: [
                n for n in names if n == "__pycache__" or n.endswith((".html", ".txt"))
            ],
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def append(path: Path, line: str) -> None:
    path.write_text(path.read_text(encoding="utf-8") + f"\n{line}\n", encoding="utf-8")


# --- The real tree ------------------------------------------------------------------------


def test_the_real_apps_keep_the_layers():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_the_real_apps_import_no_private_name_of_another_app():
    result = check_private_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


# --- Back-edges ---------------------------------------------------------------------------


def test_crm_importing_pipelines_breaks_the_layers(tree):
    append(tree / "crm" / "dates.py", "from pipelines.models import Deal  # noqa")
    result = lint_imports(tree)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout
    assert "crm.dates -> pipelines.models" in result.stdout


def test_accounts_importing_crm_inside_a_function_breaks_the_layers(tree):
    append(
        tree / "accounts" / "phones.py",
        "def later():\n    from crm.models import Customer  # noqa\n    return Customer",
    )
    result = lint_imports(tree)
    assert result.returncode != 0
    assert "accounts.phones -> crm.models" in result.stdout


def test_reports_importing_pipelines_keeps_the_layers(tree):
    """A higher app may use a lower one: the contract is one-way."""
    append(tree / "reports" / "periods.py", "from pipelines.models import Deal  # noqa")
    result = lint_imports(tree)
    assert result.returncode == 0, result.stdout


# --- Private names ------------------------------------------------------------------------


def test_importing_a_private_name_of_another_app_fails(tree):
    append(tree / "pipelines" / "forms.py", "from crm.forms import _secret  # noqa")
    result = check_private_imports(tree)
    assert result.returncode == 1
    assert "pipelines/forms.py" in result.stdout
    assert "crm.forms._secret" in result.stdout


def test_reaching_a_private_name_through_a_module_fails(tree):
    append(
        tree / "reports" / "periods.py",
        "import crm.views.customers  # noqa\nvalue = crm.views.customers._helper()",
    )
    result = check_private_imports(tree)
    assert result.returncode == 1
    assert "crm.views.customers._helper" in result.stdout


def load_checker():
    spec = importlib.util.spec_from_file_location("check_private_imports", CHECKER)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    return module


def offences(tmp_path: Path, files: dict[str, str]) -> list[str]:
    """What the checker says of a small tree of two apps, `low` and `high`."""
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    for app in ("low", "high"):
        (tmp_path / app).mkdir(exist_ok=True)
        (tmp_path / app / "__init__.py").touch()
    checker = load_checker().Checker(tmp_path, ["low", "high"])
    return [f"{o.path.relative_to(tmp_path)}:{o.line} {o.reference}" for o in checker.check()]


@pytest.mark.parametrize(
    "source, found",
    [
        ("from low.util import _helper", ["high/views.py:1 low.util._helper"]),
        ("from low.util import _helper as helper", ["high/views.py:1 low.util._helper"]),
        ("from low import _internal", ["high/views.py:1 low._internal"]),
        ("from low._internal import thing", ["high/views.py:1 low._internal"]),
        ("import low._internal", ["high/views.py:1 low._internal"]),
        ("import low.util\nlow.util._helper()", ["high/views.py:2 low.util._helper"]),
        ("import low.util as u\nx = u._CACHE", ["high/views.py:2 low.util._CACHE"]),
        ("from low import util\nutil._helper()", ["high/views.py:2 low.util._helper"]),
        # Public names, dunders and attributes of imported objects are fine.
        ("from low.util import helper, Thing", []),
        ("from low.util import __all__", []),
        ("from low.util import Thing\nThing._meta", []),
        ("import low.util\nlow.util.Thing._meta", []),
        # Private names inside one app, and relative imports, are the app's own business.
        ("from high.views import _mine", []),
        ("from .views import _mine", []),
    ],
)
def test_the_private_name_rules(tmp_path, source, found):
    files = {"low/util.py": "", "low/_internal.py": "", "high/views.py": source}
    assert offences(tmp_path, files) == found


# --- Every app is in the graph and in the package -----------------------------------------


def test_every_app_is_under_the_contracts():
    assert APPS == (
        "accounts",
        "automation",
        "crm",
        "imports",
        "integrations",
        "pipelines",
        "reports",
    )
    assert sorted(PYPROJECT["tool"]["importlinter"]["root_packages"]) == list(APPS)


def test_the_package_holds_every_app_and_its_subpackages_but_no_tests():
    """What a non-editable install (`pip wheel .`) ships: setuptools finds the packages
    with pyproject's include list."""
    include = PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    packaged = set(find_packages(where=ROOT, include=include))
    in_tree = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for app in APPS
        for init in (ROOT / app).rglob("__init__.py")
    }
    assert packaged == in_tree
    assert {"tests", "bench", "tools"}.isdisjoint(p.split(".")[0] for p in packaged)


def test_the_image_copies_every_app_before_installing():
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    before_install = dockerfile.split("RUN pip install", 1)[0]
    copied = set(re.findall(r"^COPY (\w+) ", before_install, flags=re.MULTILINE))
    assert set(APPS) <= copied
