"""The dashboard's pages, one file each, found by discovery: a new page is one new file here (plus its texts).

The folder is not called `pages/`: Streamlit treats a `pages/` folder beside the main script as an old-style
multipage app, and a first visit straight to /environment would run that page without app.py's shell.

Each page file says where it sits in the navigation with a literal `NAV = {...}` near its top, read here without
running the page (a page file is a Streamlit script: importing it would draw it):

    NAV = {"url": "cameras", "title": "nav.cameras", "icon": "📹", "order": 30,
           "roles": ["center", "adviser", "farmer", "kiosk"], "menu": True}

- url: the page's address (/cameras); title: the i18n key of its menu entry; icon; order: its place in the menu.
- roles: who may open it; everyone else who follows its address gets the sign-in form or "no access".
- menu: listed in the sidebar (a page reached only by link, such as a lot's report, says False).
- public: True for the one page that needs no sign-in (a notification's signed receipt link); roles stay empty.

The access tests take their page lists from `discover()`, and fail when a page is missing from them.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from orchard.records.people import Role

HERE = Path(__file__).resolve().parent
ROLES = frozenset(Role)
_KEYS = {"url", "title", "icon", "order", "roles", "menu", "public"}


class PageError(ValueError):
    """A page file without a valid NAV literal."""


@dataclass(frozen=True, slots=True)
class PageInfo:
    file: str  # the module name, "command_center"
    url: str
    title: str
    icon: str
    order: int
    roles: frozenset[str]
    menu: bool
    public: bool

    @property
    def path(self) -> str:
        """The page script as st.Page and AppTest.switch_page name it, relative to dashboard/app.py."""
        return f"views/{self.file}.py"


def _nav(path: Path) -> dict[str, object]:
    for node in ast.parse(path.read_text(encoding="utf-8"), str(path)).body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["NAV"]:
            try:
                value = ast.literal_eval(node.value)
            except ValueError as e:
                raise PageError(f"{path.name}: NAV must be a literal dict ({e})") from None
            if not isinstance(value, dict):
                raise PageError(f"{path.name}: NAV must be a dict")
            return value
    raise PageError(f"{path.name}: no NAV = {{...}} at the top level; every page says where it goes")


def read(path: Path) -> PageInfo:
    nav = _nav(path)
    if unknown := set(nav) - _KEYS:
        raise PageError(f"{path.name}: unknown NAV keys {sorted(unknown)}")
    roles = frozenset(nav.get("roles", ()))  # type: ignore[call-overload]
    public = bool(nav.get("public", False))
    if bad := roles - ROLES:
        raise PageError(f"{path.name}: unknown roles {sorted(bad)}")
    if public == bool(roles):
        raise PageError(f"{path.name}: a page is either public (no roles) or for some roles")
    try:
        return PageInfo(path.stem, str(nav["url"]), str(nav["title"]), str(nav["icon"]), int(nav["order"]),  # type: ignore[call-overload]
                        roles, bool(nav.get("menu", True)), public)
    except KeyError as e:
        raise PageError(f"{path.name}: NAV lacks {e}") from None


def discover(folder: Path = HERE) -> tuple[PageInfo, ...]:
    """Every page of the folder, in menu order. Two pages with one address or one place are an error."""
    pages = sorted((read(p) for p in folder.glob("*.py") if p.name != "__init__.py"), key=lambda p: p.order)
    for attr in ("url", "order"):
        seen = [getattr(p, attr) for p in pages]
        if dup := {x for x in seen if seen.count(x) > 1}:
            raise PageError(f"two pages with the same {attr}: {sorted(dup)}")
    return tuple(pages)
