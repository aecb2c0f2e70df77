"""The settings as the `orchard` command loads them: a readable message instead of a traceback when they are
wrong, and every secret in them registered to be masked in this process's output."""

from __future__ import annotations

import typer
from pydantic import ValidationError

from orchard.redact import hide
from orchard.settings import Settings, secret_values
from orchard.site import Site, SiteError, site_for


def load_settings() -> Settings:
    """The settings, with every secret in them registered to be masked in this process's output."""
    try:
        settings = Settings()
    except ValidationError as e:
        lines = [f"  {'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()]
        typer.echo("配置有误 / invalid settings (ORCHARD_* environment variables):\n" + "\n".join(lines), err=True)
        raise typer.Exit(2) from None
    hide(*secret_values(settings))
    return settings


def site_problem(settings: Settings) -> str | None:
    """What is wrong with the site file, checked whole: its plots, devices and cameras (orchard.site), and its
    [rules] against the rule pack's own settings models (unknown rules, misspelt or out-of-range numbers,
    per-plot overrides for plots that do not exist), and its devices' profiles; None when nothing is."""
    from analytics.engine import RuleConfigError, configs_for
    from analytics.rules import load
    from sensors.profiles import profiles

    try:
        site = site_for(settings)
        configs_for(site, load())
    except (SiteError, RuleConfigError) as e:
        return str(e)
    known = profiles()
    if bad := sorted({f"{d.id}: {d.profile}" for d in site.devices if d.profile and d.profile not in known}):
        return f"设备型号不存在 / unknown device profiles ({'; '.join(bad)}); `orchard devices profiles` lists them"
    return None


def load_site(settings: Settings) -> Site:
    """The site file, checked whole as it loads (site_problem), so a mistake is named at startup by the command
    that reads it rather than by analytics later. Exits 2 with the message."""
    if (problem := site_problem(settings)) is not None:
        typer.echo(f"站点文件有误 / the site file is wrong: {problem}", err=True)
        raise typer.Exit(2)
    return site_for(settings)
