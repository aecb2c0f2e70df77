"""Who may see what: the signed-in person as a `Principal`, and the one rule every read goes through.

- center: every plot, every action, the admin tools;
- adviser: the plots they cover (and the site-wide things: weather, grading lines);
- farmer: their own plots only: readings, cameras, alarms, lots, work orders;
- kiosk: the wall screen: every plot, read-only, no personal data (people's names, phone numbers, receipts).

Pages and the dashboard's data functions take a Principal and ask it; none decides by hiding a widget.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from orchard.records.people import People, Role, User


class Forbidden(PermissionError):
    """The principal may not see or do this. `key` is the i18n key of the message shown to them."""

    def __init__(self, key: str = "auth.forbidden") -> None:
        super().__init__(key)
        self.key = key


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: Role
    display: str
    # The plots they may see; None means every plot (center, kiosk). Sorted, so it hashes the same each run.
    plots: tuple[str, ...] | None

    @property
    def all_plots(self) -> bool:
        return self.plots is None

    @property
    def personal_data(self) -> bool:
        """May see people's names, phone numbers, read receipts, farmers' report photos."""
        return self.role != "kiosk"

    @property
    def can_act(self) -> bool:
        """May change anything (ack an alarm, open a work order, start a lot)."""
        return self.role != "kiosk"

    @property
    def is_center(self) -> bool:
        return self.role == "center"

    def sees(self, plot: str | None) -> bool:
        """A thing of this plot; plot None is site-wide (the weather, a grading line), not for farmers."""
        if plot is None or plot == "":
            return self.role != "farmer"
        return self.plots is None or plot in self.plots

    def scope(self, wanted: Iterable[str] | None = None) -> tuple[str, ...] | None:
        """The plots a query may touch: what was asked for, cut to what this principal may see.
        None means no restriction (only for the all-plots roles asking for everything)."""
        if wanted is None:
            return self.plots
        asked = tuple(sorted(set(wanted)))
        return asked if self.plots is None else tuple(p for p in asked if p in self.plots)

    def check(self, plot: str | None) -> None:
        if not self.sees(plot):
            raise Forbidden()

    def require(self, *, act: bool = False, center: bool = False) -> None:
        if (act and not self.can_act) or (center and not self.is_center):
            raise Forbidden()


KIOSK = Principal("kiosk", Role.KIOSK, "大屏", None)


def principal_of(user: User, people: People) -> Principal:
    """A user's principal: farmers get the plots they own, advisers the plots they cover."""
    if user.role in ("center", "kiosk"):
        return Principal(user.name, user.role, user.display, None)
    return Principal(user.name, user.role, user.display, tuple(sorted(people.plots_of(user.name))))
