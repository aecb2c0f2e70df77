"""Extension points found by discovery, not by hand-kept lists: a page, a rule, a camera source kind."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from dashboard.views import HERE, PageError, PageInfo, discover

GOOD = '"""A page."""\n\nNAV = {"url": "x", "title": "nav.x", "icon": "x", "order": 1, "roles": ["center"]}\n'


def test_a_new_page_file_is_a_new_page(tmp_path: Path) -> None:
    (tmp_path / "x.py").write_text(GOOD)
    (tmp_path / "y.py").write_text(GOOD.replace('"x"', '"y"').replace('"order": 1', '"order": 0'))
    assert [(p.file, p.url, p.path) for p in discover(tmp_path)] == [("y", "y", "views/y.py"),
                                                                    ("x", "x", "views/x.py")]


@pytest.mark.parametrize(("text", "says"), [
    ('"""No NAV."""\n', "no NAV"),
    ('NAV = dict(url="x")\n', "literal"),
    (GOOD.replace('"roles": ["center"]', '"roles": ["mayor"]'), "unknown roles"),
    (GOOD.replace('"roles": ["center"]', '"roles": []'), "either public"),
    (GOOD.replace('"roles": ["center"]', '"roles": ["center"], "public": True'), "either public"),
    (GOOD.replace('"icon": "x", ', ""), "lacks 'icon'"),
    (GOOD.replace('"order": 1', '"order": 1, "colour": "red"'), "unknown NAV keys"),
])
def test_a_page_must_say_where_it_goes(tmp_path: Path, text: str, says: str) -> None:
    (tmp_path / "bad.py").write_text(text)
    with pytest.raises(PageError, match=says):
        discover(tmp_path)


def test_two_pages_at_one_address_are_refused(tmp_path: Path) -> None:
    (tmp_path / "x.py").write_text(GOOD)
    (tmp_path / "y.py").write_text(GOOD.replace('"order": 1', '"order": 2'))
    with pytest.raises(PageError, match="same url"):
        discover(tmp_path)


def test_every_rule_module_registers_its_rules() -> None:
    """A rule is one file in analytics/rules/: load() finds every module without a list."""
    import pkgutil

    import analytics.rules as pack

    rules = pack.load()
    modules = {m.name for m in pkgutil.iter_modules(pack.__path__)} - {"base"}
    assert modules == {cls.__module__.rsplit(".", 1)[1] for cls in rules.values()}


def test_a_name_registered_twice_is_refused() -> None:
    from orchard.registry import Registry

    kinds = Registry[str]("camera kind", "video.sources")
    kinds.add("stream")("first")
    with pytest.raises(ValueError, match="two implementations of camera kind stream"):
        kinds.add("stream")("second")


def _who_roles(path: Path) -> set[str] | None:
    """The roles a page's own `signin.who(...)` call lets in (None: it has no such call)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "who"
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "signin"):
            return {ast.literal_eval(a) for a in node.args}
    return None


@pytest.mark.parametrize("page", [p for p in discover() if not p.public], ids=lambda p: p.file)
def test_each_page_lets_in_exactly_the_roles_its_menu_names(page: PageInfo) -> None:
    """A page checks the roles itself, by name: a new role (town or county staff) is refused until a page says it
    is for them, and the menu and the page agree on who that is."""
    assert _who_roles(HERE / f"{page.file}.py") == set(page.roles)
