"""The message catalogue: every text a person reads, in zh-CN (default) and English.

Messages live in `orchard/locales/<lang>.toml`, grouped by section (`[cc] title = "..."` is key `cc.title`),
with `{name}` placeholders. tests/orchard/test_i18n.py fails when a key used in the code is missing in either
language or when the two languages disagree on keys or placeholders.
"""

from __future__ import annotations

import re
import string
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

LANGS = ("zh", "en")
DEFAULT_LANG = "zh"
_DIR = Path(__file__).parent / "locales"


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = str(v)
    return out


@cache
def messages(lang: str) -> dict[str, str]:
    return _flatten(tomllib.loads((_DIR / f"{lang}.toml").read_text(encoding="utf-8")))


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def normalise(lang: str | None) -> str:
    """'en', 'en-US', 'EN' -> 'en'; anything unknown -> the default (Chinese)."""
    code = (lang or "").split("-")[0].split("_")[0].lower()
    return code if code in LANGS else DEFAULT_LANG


def t(key: str, lang: str = DEFAULT_LANG, **params: Any) -> str:
    """The message for key in lang, formatted; a missing key shows as itself so it is noticed, never crashes."""
    text = messages(normalise(lang)).get(key)
    if text is None:
        return key
    return text.format(**params) if params else text


def section(prefix: str, lang: str = DEFAULT_LANG) -> dict[str, str]:
    """Every message of one section, keyed without the section (`section("lot")["grower"]`)."""
    head = f"{prefix}."
    return {k.removeprefix(head): v for k, v in messages(normalise(lang)).items() if k.startswith(head)}


_MARKDOWN = re.compile(r"([\\`*_{}\[\]<>()#+\-.!|~:@])")  # ':' and '@': no http:// or mail autolinks


def plain(text: str) -> str:
    """People's own words (a report, a work order's title, a grower's name, a note) for markdown (the dashboard,
    DingTalk, WeCom), shown as the text they typed: every markdown character escaped, so `![x](http://...)` makes
    no one's browser or chat app fetch anything and `**` stays two stars. ':' and '@' are escaped too, because an
    autolink (GFM's bare http://..., www. or a@b) is recognised before escapes and would show the backslashes
    inside it. Line breaks stay line breaks."""
    return _MARKDOWN.sub(r"\\\1", text).replace("\n", "  \n")


_ACTIVE = str.maketrans({"[": "［", "]": "］", "(": "（", ")": "）", "!": "！", "<": "＜", ">": "＞", "`": "｀",
                         "*": "＊", "_": "＿", "#": "＃", "|": "｜", "~": "～"})


def neutral(text: str) -> str:
    """People's words for chat apps' markdown (DingTalk, WeCom), which may not honour backslash escapes: the
    characters that make links, images, HTML or emphasis become their full-width forms, which read the same in
    Chinese text; numbers, dashes and dots stay as they are (-2.1°C)."""
    return text.translate(_ACTIVE)
