"""Personal signed links in notifications: opening one records that this recipient read this alarm, and offers
to acknowledge it. The token is the notification id and an expiry, signed with HMAC-SHA256 under
ORCHARD_NOTIFY__LINK_SECRET; nothing else is needed to check it, and nothing in it can be changed unnoticed."""

from __future__ import annotations

import base64
import hashlib
import hmac


class LinkError(ValueError):
    """The link is not valid: `reason` is expired or tampered."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _b64(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def _unb64(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def _mac(secret: str, payload: str) -> bytes:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()[:18]


def sign(notification_id: int, expires_s: int, secret: str) -> str:
    payload = f"{notification_id}.{expires_s}"
    return f"{_b64(payload.encode())}.{_b64(_mac(secret, payload))}"


def _open(token: str, secret: str) -> str:
    """The signed payload of a token whose MAC holds; LinkError("tampered") otherwise."""
    try:
        head, mac = token.split(".")
        payload = _unb64(head).decode()
        given = _unb64(mac)
    except (ValueError, UnicodeDecodeError):
        raise LinkError("tampered") from None
    if not hmac.compare_digest(given, _mac(secret, payload)):
        raise LinkError("tampered")
    return payload


def verify(token: str, secret: str, now_s: float) -> int:
    """The notification id of a valid token; LinkError otherwise."""
    try:
        nid, expires = (int(x) for x in _open(token, secret).split("."))
    except ValueError:
        raise LinkError("tampered") from None
    if now_s > expires:
        raise LinkError("expired")
    return nid


# The wall screen's link (?kiosk=<token>): read-only access without a person signing in. Its payload cannot be
# read as a notification's (that starts with a number), and it is signed under its own key.
def sign_screen(expires_s: int, secret: str) -> str:
    payload = f"screen.{expires_s}"
    return f"{_b64(payload.encode())}.{_b64(_mac(secret, payload))}"


def verify_screen(token: str, secret: str, now_s: float) -> None:
    kind, _, expires = _open(token, secret).partition(".")
    if kind != "screen" or not expires.isdigit():
        raise LinkError("tampered")
    if now_s > int(expires):
        raise LinkError("expired")


# Video for a browser (dashboard/media.py): a camera's live buffer or one clip, for a short while. The page that
# shows it checked who may see it and signs the address; the routes check only the signature, the subject and the
# expiry, so a segment request costs no database lookup. The payload starts with "media", unlike the others.
def sign_media(subject: str, expires_s: int, secret: str) -> str:
    payload = f"media.{expires_s}.{subject}"
    return f"{_b64(payload.encode())}.{_b64(_mac(secret, payload))}"


def verify_media(token: str, secret: str, now_s: float) -> str:
    """The subject ("live:<camera>" or "clip:<path>") of a valid media token; LinkError otherwise."""
    kind, _, rest = _open(token, secret).partition(".")
    expires, _, subject = rest.partition(".")
    if kind != "media" or not expires.isdigit() or not subject:
        raise LinkError("tampered")
    if now_s > int(expires):
        raise LinkError("expired")
    return subject


# A notice's personal link (/receipt?n=<token>): opening it records that this person read this notice
# (orchard/records/notices.py). The payload starts with "notice", so it reads as no other kind of token.
def sign_notice(notice_id: int, user: str, expires_s: int, secret: str) -> str:
    payload = f"notice.{expires_s}.{notice_id}.{user}"
    return f"{_b64(payload.encode())}.{_b64(_mac(secret, payload))}"


def verify_notice(token: str, secret: str, now_s: float) -> tuple[int, str]:
    """(notice id, user name) of a valid notice token; LinkError otherwise."""
    kind, _, rest = _open(token, secret).partition(".")
    expires, _, rest = rest.partition(".")
    nid, _, user = rest.partition(".")
    if kind != "notice" or not expires.isdigit() or not nid.isdigit() or not user:
        raise LinkError("tampered")
    if now_s > int(expires):
        raise LinkError("expired")
    return int(nid), user
