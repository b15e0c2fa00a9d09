"""Run the `>>>` examples of every `uniasr` module whose source has any (found afresh each run, so a module
that is added, moved or renamed is picked up without editing this file)."""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import pkgutil
from pathlib import Path

import pytest

import uniasr


def doctest_modules() -> list[str]:
    """-> the dotted names of the `uniasr` modules whose source contains `>>>`, sorted."""
    names = []
    for info in pkgutil.walk_packages(uniasr.__path__, prefix="uniasr."):
        spec = importlib.util.find_spec(info.name)
        origin = spec.origin if spec is not None else None
        if origin and origin.endswith(".py") and ">>>" in Path(origin).read_text(encoding="utf-8"):
            names.append(info.name)
    return sorted(names)


MODULES = doctest_modules()


def test_some_modules_have_doctests() -> None:
    assert len(MODULES) >= 5, MODULES


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as e:  # a module of an optional extra whose dependency is not installed
        pytest.skip(f"{name} needs {e.name}")
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report: list[str] = []
    for test in doctest.DocTestFinder().find(module):  # examples marked `# doctest: +SKIP` do not run
        runner.run(test, out=report.append)
    assert runner.failures == 0, f"{name}: {runner.failures} doctest examples failed\n" + "".join(report)
