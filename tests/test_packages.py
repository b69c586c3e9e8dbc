"""core's packages: every name in `__all__` resolves, and importing a package stays cheap."""

from __future__ import annotations

import importlib

import pytest

from tests.support.imports import heavy_modules_after

PACKAGES = ("core.vision", "core.emotion", "core.music", "core.analytics", "core.training")


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_name_resolves(package):
    module = importlib.import_module(package)
    assert module.__all__, f"{package} names no public API"
    missing = [name for name in module.__all__ if getattr(module, name, None) is None]
    assert not missing
    assert sorted(dir(module)) == sorted(module.__all__)
    with pytest.raises(AttributeError):
        module.no_such_name  # noqa: B018


@pytest.mark.parametrize("package", PACKAGES)
def test_importing_a_package_loads_nothing_heavy(package):
    assert heavy_modules_after(f"import {package}") == []


def test_no_core_module_imports_streamlit():
    from core.paths import REPO_ROOT

    modules = sorted(
        ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts).removesuffix(".__init__")
        for path in (REPO_ROOT / "core").rglob("*.py")
    )
    code = "\n".join(f"import {name}" for name in modules)
    assert heavy_modules_after(code, ("streamlit",)) == []
