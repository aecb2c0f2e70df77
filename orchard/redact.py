"""Secrets never shown: passwords and tokens in URLs are masked wherever a URL is printed, and every secret a
process knows is masked in every log line it writes, whatever put it there (an exception's text, a traceback).

- `redact_url("influxdb://admin:pw@host/db?token=t")` gives ``influxdb://admin:***@host/db?token=***``.
- `hide(value, ...)` registers secrets of this process; `redact(text)` masks all of them (the log formatter and
  the CLI's error messages call it). Registered once at start (`orchard.settings.secret_values`), and by the code
  that reads a secret from elsewhere (a camera's password from its environment variable).
"""

from __future__ import annotations

import re
import threading
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

MASK = "***"
# Query parameters that carry a credential (InfluxDB's token, DingTalk's access_token, WeCom's key, ...).
SECRET_PARAMS = frozenset({"token", "access_token", "key", "password", "pass", "secret", "sign", "api_key",
                           "apikey", "auth"})
_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@\s]*)@", re.I)
_MIN_LEN = 4  # shorter values (a port, "on") would mask half the log; no real secret is this short

_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None


def redact_url(url: str) -> str:
    """The URL with its password and credential query values replaced by ***; anything unparsable is masked by
    pattern (scheme://user:pass@) rather than shown."""
    try:
        parts = urlsplit(url)
        out = url
        if parts.password is not None:
            host = parts.netloc.rsplit("@", 1)[1]
            out = out.replace(parts.netloc, f"{parts.username or ''}:{MASK}@{host}", 1)
        if parts.query:
            pairs = parse_qsl(parts.query, keep_blank_values=True)
            if any(k.lower() in SECRET_PARAMS for k, _ in pairs):
                masked = urlencode([(k, MASK if k.lower() in SECRET_PARAMS else v) for k, v in pairs], safe="*")
                out = out.replace("?" + parts.query, "?" + masked, 1)
        return out
    except ValueError:
        return _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", url)


def hide(*values: str | None) -> None:
    """Mask these values in every log line and CLI message of this process from now on."""
    global _pattern
    new = {v for v in values if v and len(v) >= _MIN_LEN}
    if not new - _secrets:
        return
    with _lock:
        _secrets.update(new)
        # Longest first, so a secret that contains another is masked whole.
        _pattern = re.compile("|".join(re.escape(v) for v in sorted(_secrets, key=len, reverse=True)))


def redact(text: str) -> str:
    """The text with every registered secret, and the password of any URL in it, masked."""
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    return _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)


def url_secrets(url: str | None) -> list[str]:
    """The password and credential query values of a URL, as written and decoded (either may be printed)."""
    if not url:
        return []
    out: list[str] = []
    try:
        parts = urlsplit(url)
        if parts.password:
            raw = parts.netloc.rsplit("@", 1)[0].split(":", 1)[1]
            out += [raw, unquote(raw)]
        for k, v in parse_qsl(parts.query, keep_blank_values=True):
            if k.lower() in SECRET_PARAMS:
                out += [v, quote(v, safe="")]
    except ValueError:
        out += [m["pw"] for m in _USERINFO.finditer(url)]
    return [v for v in out if v]
