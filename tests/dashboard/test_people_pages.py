"""我的果园 and 我的工作 as their people use them (AppTest): each role lands on its own home; the farmer's plot says in
one sentence what is wrong and what to do, and one tap acknowledges or reports it dealt with; the adviser's day
groups the unacknowledged alarms by rule, orders the work and the plots to visit, and one tap moves a work order on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from orchard.models import Signal
from orchard.records import Records
from orchard.records.alarms import AlarmBook
from orchard.records.people import People, User
from orchard.records.workorders import WorkOrders
from tests.conftest import Seeded
from tests.dashboard.conftest import seed

pytestmark = pytest.mark.integration
RunApp = Callable[..., AppTest]


def frost(plot: str, severity: str = "critical") -> Signal:
    return Signal("sunzigou", f"plot:{plot}", "spring_frost", severity, "alarm.spring_frost_text",
                  {"plot": plot, "temp_c": -2.1, "threshold_c": -1.5, "minutes": 35}, plot)


def psa(plot: str) -> Signal:
    return Signal("sunzigou", f"plot:{plot}", "psa_risk", "warning", "alarm.psa_risk_text",
                  {"plot": plot, "index": 30, "threshold": 25, "wet_hours": 40}, plot)


@pytest.fixture
def village(tmp_path: Path) -> Iterator[tuple[Seeded, Records]]:
    seeded = seed(tmp_path, f"sqlite:///{tmp_path}/ts.sqlite", 0, time.time())
    records = Records.in_data_dir(tmp_path)
    people = People(records)
    people.upsert(User("wang", "王建国", "farmer"))
    people.set_plots("wang", ["p01"], "owns")
    people.upsert(User("li", "李明", "adviser"))
    people.set_plots("li", ["p01", "p02", "p03"], "covers")
    yield seeded, records
    records.close()


def test_each_role_lands_on_its_own_home(run_app: RunApp, village: tuple[Seeded, Records]) -> None:
    seeded, _ = village
    assert run_app(seeded, who="wang").title[0].value == "我的果园"
    assert run_app(seeded, who="li").title[0].value == "我的工作"
    assert run_app(seeded, who="zhang").title[0].value.startswith("指挥中心")  # the center: the command center


def test_the_farmers_plot_says_what_to_do_and_one_tap_answers(run_app: RunApp,
                                                              village: tuple[Seeded, Records]) -> None:
    seeded, records = village
    book = AlarmBook(records)
    mine, _ = book.fire(frost("p01"), time.time_ns())
    book.fire(frost("p02"), time.time_ns())  # next door: not theirs
    at = run_app(seeded, who="wang")
    text = "\n".join(m.value for m in at.markdown)
    assert "危险" in text and "现在要做：" in text and "霜冻" in text  # the state in words, and the advice
    assert "大湾红阳园" in text and "石板坡" not in text
    at.button(key=f"home_ack_{mine.id}").click().run()
    assert book.get(mine.id).acked_by == "wang"
    at = run_app(seeded, who="wang")
    assert "已收到" in "\n".join(m.value for m in at.markdown)
    at.button(key=f"home_done_{mine.id}").click().run()
    assert [e.actor for e in book.events(mine.id) if e.action == "handled"] == ["wang"]
    assert "已告知处理完" in "\n".join(m.value for m in at.markdown)


def test_a_fine_plot_says_so(run_app: RunApp, village: tuple[Seeded, Records]) -> None:
    seeded, _ = village
    at = run_app(seeded, who="wang")
    assert "正常" in "\n".join(m.value for m in at.markdown)
    assert "一切正常" in "\n".join(m.value for m in at.markdown)
    assert any(s.value == "没有需要您处理的预警。" for s in at.success)


def test_the_advisers_day(run_app: RunApp, village: tuple[Seeded, Records]) -> None:
    seeded, records = village
    book, orders = AlarmBook(records), WorkOrders(records, seeded.data_dir / "photos")
    now = time.time_ns()
    for p in ("p01", "p02"):
        book.fire(frost(p), now)
    book.fire(psa("p03"), now)
    acked, _ = book.fire(psa("p01"), now)
    book.ack(acked.id, "wang", now)
    new = orders.open(plot="p02", title="叶片发黄", created_by="wang", now_ns=now - 3600 * 10**9, source="photo")
    at = run_app(seeded, who="li")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics == {"待确认预警": "3", "我的工单": "1", "已超时": "1"}  # the new order waited 1 h (30 min SLA)
    groups = [m.value for m in at.markdown if m.value.startswith("**") and "地块" in m.value]
    assert groups == ["**溃疡病（Psa）侵染风险** · 1 个地块", "**春季晚霜冻** · 2 个地块"]  # unacked only, by rule
    visits = [m.value for m in at.markdown if m.value[:2] in ("1.", "2.", "3.")]
    assert [v.split("**")[1] for v in visits][:2] == ["石板坡红阳园", "大湾红阳园"]  # frost + an overdue order first
    at.button(key="work_ack_spring_frost").click().run()
    assert all(a.acked_by == "li" for a in book.active() if a.type == "spring_frost")
    at.button(key=f"work_go_{new.id}").click().run()  # 接单: nobody's yet, now li's and accepted
    assert (orders.get(new.id).assignee, orders.get(new.id).state) == ("li", "accepted")
    at.button(key=f"work_go_{new.id}").click().run()
    assert orders.get(new.id).state == "on_site"
    at.button(key=f"work_go_{new.id}").click().run()  # resolving needs a word or a photo
    assert at.error and "请写处理说明" in at.error[0].value and orders.get(new.id).state == "on_site"
    at.text_input(key=f"work_note_{new.id}").input("喷了铜制剂").run()
    at.button(key=f"work_go_{new.id}").click().run()
    assert orders.get(new.id).state == "resolved"
    assert orders.events(new.id)[-1].note == "喷了铜制剂"
