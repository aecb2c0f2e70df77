"""Group robots (DingTalk custom robots, WeCom group robots): one post reaches a whole group, and a robot accepts
only so many.

The limits, as the vendors state them:
- DingTalk: "每个机器人每分钟最多发送20条" — more than 20 a minute and the robot refuses everything for 10 minutes
  (errcode 130101 "send too fast, exceed 20 times per minute", as reported in ccfos/nightingale#369). DingTalk's
  own advice for monitoring alarms: "将这些信息进行整合,通过markdown消息以摘要的形式发送到群里" — combine them
  into a markdown summary. (open.dingtalk.com/document/group/custom-robot-access, "消息发送频率限制")
- WeCom: 20 messages a minute per robot (developer.work.weixin.qq.com/document/path/91770), errcode 45009 "api
  freq out of limit" beyond; markdown content at most 4096 bytes (errcode 40058, dromara/domain-admin#152).

So the dispatcher sends per robot, not per person: all of one alarm's recipients at one escalation step share one
post that @-mentions them, each with their personal read/ack link; when more alarms are due than the robot may
post right now, they are packed into summary posts, the most severe first; what does not fit waits for the next
free slot (never refused, never dropped). RobotGate keeps the count; it is shared by the dispatcher and the digest.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from analytics.notify.compose import ICONS, Message
from orchard import i18n
from orchard.records.people import User

NS = 1_000_000_000
SEVERITY_ORDER = {"critical": 0, "major": 1, "warning": 2, "info": 3}


@dataclass(frozen=True, slots=True)
class Mention:
    """One person a post is for: @-mentioned (by phone where the robot can), with their own signed link."""

    user: User
    link: str | None


@dataclass(frozen=True, slots=True)
class Item:
    """One alarm's message for one robot at one escalation step (or the digest): what one post would carry alone."""

    key: tuple[int, str, int]  # (alarm id, kind, stage); (0, "digest", 0) for the digest
    severity: str
    started_ns: int
    message: Message  # the full message, for a post of its own
    mentions: tuple[Mention, ...]
    detail: str = ""  # the alarm's one sentence, for a summary post
    what: str = ""  # the alarm type's name and what to do about it, said once per summary post


@dataclass(frozen=True, slots=True)
class Post:
    """What goes to the robot in one request."""

    title: str
    markdown: str
    mentions: tuple[Mention, ...]
    items: tuple[Item, ...]

    @property
    def phones(self) -> list[str]:
        return sorted({m.user.phone for m in self.mentions if m.user.phone})


class RobotGate:
    """How many posts a robot may still send: at most `per_min` in any 60 s (a sliding window is stricter than
    either a sliding or a calendar minute at the vendor's side), and none while the vendor throttles it.
    Times are the caller's clock (epoch ns), so an injected clock drives it in tests."""

    def __init__(self, per_min: int, throttle_s: float) -> None:
        self.per_min, self.throttle_ns = per_min, int(throttle_s * NS)
        self.posts: deque[int] = deque()
        self.blocked_until = 0
        self.seeded = False
        self.lock = threading.Lock()

    def _trim(self, now_ns: int) -> None:
        while self.posts and self.posts[0] <= now_ns - 60 * NS:
            self.posts.popleft()

    def available(self, now_ns: int) -> int:
        with self.lock:
            if now_ns < self.blocked_until:
                return 0
            self._trim(now_ns)
            return max(0, self.per_min - len(self.posts))

    def next_free(self, now_ns: int) -> int:
        """The earliest time a post may go out."""
        with self.lock:
            if now_ns < self.blocked_until:
                return self.blocked_until
            self._trim(now_ns)
            if len(self.posts) < self.per_min:
                return now_ns
            return self.posts[len(self.posts) - self.per_min] + 60 * NS + 1

    def seed(self, posts: int, now_ns: int) -> None:
        """Once, at start: the posts an earlier run made this minute (counted as made now, the safe side)."""
        with self.lock:
            if not self.seeded:
                self.posts.extend([now_ns] * posts)
                self.seeded = True

    def record(self, now_ns: int, n: int = 1) -> None:
        with self.lock:
            self.posts.extend([now_ns] * n)

    def throttled(self, now_ns: int) -> int:
        """The vendor refused for sending too fast: nothing more until its throttle ends; returns that time."""
        with self.lock:
            self.blocked_until = max(self.blocked_until, now_ns + self.throttle_ns)
            return self.blocked_until


def ordered(items: Iterable[Item]) -> list[Item]:
    """Critical first, then by when the alarm began, then by alarm id."""
    return sorted(items, key=lambda i: (SEVERITY_ORDER.get(i.severity, 9), i.started_ns, i.key))


def group_lang(mentions: Iterable[Mention]) -> str:
    """A group post has one language: the one most of its recipients read (Chinese on a tie or when nobody)."""
    counts = Counter(m.user.lang for m in mentions)
    if not counts:
        return i18n.DEFAULT_LANG
    top = max(counts.values())
    return i18n.DEFAULT_LANG if counts.get(i18n.DEFAULT_LANG) == top else counts.most_common(1)[0][0]


def _mention_line(m: Mention, lang: str, at_phone: bool) -> str:
    who = f"@{m.user.phone} {m.user.display}" if at_phone and m.user.phone else m.user.display
    return f"{who} [{i18n.t('notify.open', lang)}]({m.link})" if m.link else who


def _size(text: str) -> int:
    return len(text.encode())


def single(item: Item, at_phone: bool) -> Post:
    """One alarm, one post: the full message, then everyone it is for."""
    lang = group_lang(item.mentions)
    lines = [item.message.markdown, "", *(f"- {_mention_line(m, lang, at_phone)}" for m in item.mentions)]
    return Post(item.message.subject, "\n".join(lines), item.mentions, (item,))


def _compact(item: Item, lang: str, at_phone: bool) -> str:
    who = " · ".join(_mention_line(m, lang, at_phone) for m in item.mentions)
    detail = f"\n  {item.detail}" if item.detail else ""
    return f"- {ICONS.get(item.severity, '')} {i18n.neutral(item.message.subject)}{detail}\n  {who}"


def summary(items: Sequence[Item], lang: str, at_phone: bool, part: int, parts: int) -> Post:
    worst = min(items, key=lambda i: SEVERITY_ORDER.get(i.severity, 9)).severity
    counted = Counter(i.severity for i in items)
    tally = "，".join(f"{i18n.t(f'alarm.severity_{s}', lang)} {counted[s]}"
                      for s in sorted(counted, key=lambda s: SEVERITY_ORDER.get(s, 9)))
    title = i18n.t("notify.batch_title", lang, n=len(items), part=part, parts=parts)
    head = f"### {ICONS.get(worst, '')} {title}\n{i18n.t('notify.batch_tally', lang, tally=tally)}"
    advice = list(dict.fromkeys(i.what for i in items if i.what))
    body = "\n".join([head, *(_compact(i, lang, at_phone) for i in items), *(f"> {a}" for a in advice)])
    mentions = tuple(m for i in items for m in i.mentions)
    return Post(title, body, mentions, tuple(items))


def _without_links(item: Item) -> Item:
    return Item(item.key, item.severity, item.started_ns, item.message,
                tuple(Mention(m.user, None) for m in item.mentions), item.detail, item.what)


def pack(items: Sequence[Item], budget: int, max_bytes: int, at_phone: bool) -> tuple[list[Post], list[Item]]:
    """The posts to send now (at most `budget`, each under `max_bytes`), most severe first, and the items that
    must wait for the next free slot. Each item alone when they all fit in the budget; otherwise summaries."""
    todo = ordered(items)
    if budget <= 0 or not todo:
        return [], todo
    if len(todo) <= budget:
        posts = [single(i, at_phone) for i in todo]
        if all(_size(p.markdown) <= max_bytes for p in posts):
            return posts, []
    lang = group_lang(m for i in todo for m in i.mentions)

    def fits(batch: list[Item]) -> bool:
        return _size(summary(batch, lang, at_phone, budget, budget).markdown) <= max_bytes

    batches: list[list[Item]] = []
    for n, item in enumerate(todo):
        if not fits([item]):  # too many people for one post: their names without the links
            item = todo[n] = _without_links(item)
        if batches and fits([*batches[-1], item]):
            batches[-1].append(item)
            continue
        if len(batches) == budget:
            break
        batches.append([item])  # an item larger than a post alone still goes, as its own summary
    sent = sum(len(b) for b in batches)
    return [summary(b, lang, at_phone, n + 1, len(batches)) for n, b in enumerate(batches)], todo[sent:]
