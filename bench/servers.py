"""Run Debian's Mosquitto and InfluxDB natively from the deploy/ configs, on free loopback ports in a temp dir.

Used by the tests and by ``orchard bench``; the configs are the very files docker-compose mounts, with only
their paths, ports and log destination replaced.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Self

import httpx

from orchard.store import influxql

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


class ServerMissing(RuntimeError):
    """The server binary is not installed."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, timeout_s: float, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {log.read_text()[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"server did not open port {port} within {timeout_s}s: {log.read_text()[-2000:]}")


def _set(text: str, key: str, value: str) -> str:
    """Replace the value of every `key value` line of a mosquitto config."""
    pattern = re.compile(rf"^{re.escape(key)}\s.*$", re.M)
    if not pattern.search(text):
        raise KeyError(f"{key} not found in mosquitto config")
    return pattern.sub(lambda m: f"{key} {value}", text)


def _set_toml(text: str, section: str, key: str, value: str) -> str:
    """Replace `key = ...` inside `[section]` ("" for the top level) of a flat TOML file."""
    out, current, done = [], "", False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            current = stripped[1:-1]
        elif current == section and re.match(rf"{re.escape(key)}\s*=", stripped):
            line = f"{line[: len(line) - len(line.lstrip())]}{key} = {value}"
            done = True
        out.append(line)
    if not done:
        raise KeyError(f"[{section}] {key} not found in influxdb config")
    return "\n".join(out) + "\n"


class _Server:
    binary = ""
    port = 0

    def __init__(self, workdir: Path) -> None:
        if not shutil.which(self.binary):
            raise ServerMissing(f"{self.binary} is not installed (Debian package: see README)")
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.log = workdir / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def _argv(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self._argv(), stdout=out, stderr=subprocess.STDOUT, cwd=self.workdir)
        _wait_port(self.port, 30, self.proc, self.log)

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 20) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Mosquitto(_Server):
    """deploy/mosquitto/mosquitto.conf on a free loopback port. With `auth_dir` (a directory holding the passwd and
    acl files `orchard admin mqtt-auth` writes) it refuses anonymous clients as in production; without, the tests
    and benchmarks that are not about access connect anonymously. With `tls` (certificate, key) the config's TLS
    listener is switched on too, on `tls_port`."""

    binary = "mosquitto"

    def __init__(self, workdir: Path, port: int | None = None, *, auth_dir: Path | None = None,
                 tls: tuple[Path, Path] | None = None, autosave: str | None = None) -> None:
        """`autosave`: the deploy config's persistence (None), `interval:S` (save every S seconds) or
        `changes:N` (save after every N changes, autosave_on_changes), for the persistence benchmark."""
        super().__init__(workdir)
        self.port = port or free_port()
        self.tls_port = free_port() if tls else None
        text = (DEPLOY / "mosquitto" / "mosquitto.conf").read_text()
        if autosave is not None:
            kind, _, value = autosave.partition(":")
            if kind not in ("interval", "changes") or not value.isdigit():
                raise ValueError(f"autosave must be interval:S or changes:N, got {autosave!r}")
            text = re.sub(r"(?m)^autosave_on_changes .*$", "", text)
            text = _set(text, "autosave_interval", value)
            if kind == "changes":
                text += "\nautosave_on_changes true\n"
        text = _set(text, "listener", f"{self.port} 127.0.0.1")
        text = _set(text, "persistence_location", f"{workdir}/")
        text = _set(text, "log_dest", f"file {self.log}")
        if auth_dir is not None:
            text = _set(text, "password_file", str(auth_dir / "passwd"))
            text = _set(text, "acl_file", str(auth_dir / "acl"))
        else:
            text = _set(text, "allow_anonymous", "true")
            # anonymous clients have no user name to take as their id (Mosquitto would refuse them)
            text = re.sub(r"(?m)^(password_file|acl_file|use_username_as_clientid) .*$", "", text)
        if tls is not None:
            text = re.sub(r"(?m)^#(listener 8883|certfile|keyfile|tls_version)", r"\1", text)
            text = re.sub(r"(?m)^listener 8883$", f"listener {self.tls_port} 127.0.0.1", text)
            text = _set(text, "certfile", str(tls[0]))
            text = _set(text, "keyfile", str(tls[1]))
        if os.geteuid() == 0:
            # As root Mosquitto drops to user `mosquitto`, who cannot write in a root-only temp dir.
            text += "\nuser root\n"
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(text)

    def reload(self) -> None:
        """Re-read the password and ACL files, as `docker compose kill -s SIGHUP mosquitto` does."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGHUP)
        time.sleep(0.3)

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def _argv(self) -> list[str]:
        return ["mosquitto", "-c", str(self.conf)]


class InfluxDB(_Server):
    binary = "influxd"

    def __init__(self, workdir: Path, *, auth: tuple[str, str] | None = None, database: str = "orchard") -> None:
        super().__init__(workdir)
        self.port = free_port()
        self.auth = auth
        self.database = database
        text = (DEPLOY / "influxdb" / "influxdb.conf").read_text()
        for section, key, value in (
            ("", "bind-address", f'"127.0.0.1:{free_port()}"'),
            ("meta", "dir", f'"{workdir}/meta"'),
            ("data", "dir", f'"{workdir}/data"'),
            ("data", "wal-dir", f'"{workdir}/wal"'),
            ("http", "bind-address", f'"127.0.0.1:{self.port}"'),
            ("http", "auth-enabled", "true" if auth else "false"),
        ):
            text = _set_toml(text, section, key, value)
        self.conf = workdir / "influxdb.conf"
        self.conf.write_text(text)

    @property
    def url(self) -> str:
        cred = f"{self.auth[0]}:{self.auth[1]}@" if self.auth else ""
        return f"influxdb://{cred}127.0.0.1:{self.port}/{self.database}"

    def _argv(self) -> list[str]:
        return ["influxd", "run", "-config", str(self.conf)]

    def start(self) -> None:
        super().start()
        base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the port opens a moment before /ping answers
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base}/ping", timeout=1).status_code == 204:
                    break
            time.sleep(0.05)
        if self.auth:
            # The first admin may be created without credentials; after that, auth is enforced.
            user, pw = self.auth
            q = f"CREATE USER {influxql.ident(user)} WITH PASSWORD {influxql.literal(pw)} WITH ALL PRIVILEGES"
            r = httpx.post(f"{base}/query", data={"q": q}, auth=(user, pw), timeout=10)
            r.raise_for_status()


class Postgres(_Server):
    """Debian's PostgreSQL (any version under /usr/lib/postgresql), trust auth on loopback, database `orchard`.

    PostgreSQL refuses to run as root: as root the cluster lives in its own /tmp dir owned by `postgres` (the
    pytest temp tree is root-only) and the server runs through runuser.
    """

    binary = "postgres"

    def __init__(self, workdir: Path, database: str = "orchard") -> None:
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parts[-3]))
        if not found:
            raise ServerMissing("postgres is not installed (Debian package: postgresql)")
        self.bindir = found[-1].parent
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.log = workdir / "server.log"
        self.proc = None
        self.port = free_port()
        self.database = database
        self.as_root = os.geteuid() == 0
        self.cluster = Path(tempfile.mkdtemp(prefix="orchard-pg-")) if self.as_root else workdir / "cluster"
        if self.as_root:
            pw = pwd.getpwnam("postgres")
            os.chown(self.cluster, pw.pw_uid, pw.pw_gid)
        subprocess.run([*self._user(), str(self.bindir / "initdb"), "-D", str(self.cluster / "data"), "-U",
                        "orchard", "--auth=trust", "-E", "UTF8", "--no-sync"],
                       check=True, capture_output=True)

    def _user(self) -> list[str]:
        return ["runuser", "-u", "postgres", "--"] if self.as_root else []

    def _argv(self) -> list[str]:
        return [*self._user(), str(self.bindir / "postgres"), "-D", str(self.cluster / "data"), "-p", str(self.port),
                "-k", str(self.cluster), "-c", "listen_addresses=127.0.0.1"]

    def start(self) -> None:
        super().start()
        deadline = time.monotonic() + 30
        while True:  # the port opens before the server accepts sessions
            done = subprocess.run([str(self.bindir / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U",
                                   "orchard", "-d", "postgres", "-tAc",
                                   f"SELECT 1 FROM pg_database WHERE datname = '{self.database}'"],
                                  capture_output=True, text=True)
            if done.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"PostgreSQL did not accept sessions: {done.stderr}")
            time.sleep(0.1)
        if done.stdout.strip() != "1":
            subprocess.run([str(self.bindir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "orchard",
                            self.database], check=True, capture_output=True)

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 20) -> None:
        # Signal the postmaster itself (runuser does not pass signals on), with SIGINT for a "fast" shutdown:
        # SIGTERM's "smart" one waits for every client to leave.
        pid_file = self.cluster / "data" / "postmaster.pid"
        if self.proc and self.proc.poll() is None and pid_file.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid_file.read_text().split()[0]), signal.SIGINT if sig == signal.SIGTERM else sig)
        super().stop(sig, timeout_s)

    def remove(self) -> None:
        shutil.rmtree(self.cluster, ignore_errors=True)

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.remove()

    @property
    def url(self) -> str:
        return f"postgresql://orchard@127.0.0.1:{self.port}/{self.database}"

    def fresh_database(self, name: str) -> str:
        """A new empty database on this server; returns its URL."""
        subprocess.run([str(self.bindir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "orchard", name],
                       check=True, capture_output=True)
        return f"postgresql://orchard@127.0.0.1:{self.port}/{name}"


def kill_group(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's, which has python3-gi and the GStreamer RTSP server's bindings


class RtspServer(_Server):
    """Debian's GStreamer RTSP server publishing H.264 test streams (bench/rtsp_server.py), as an IP camera does.

    `mounts` maps a path to a source: "test" (a moving picture) or "feed:<port>" (frames from a FrameFeed).
    `restart()` keeps the port, so a camera's URL stays the same across a camera "reboot"."""

    binary = "ffmpeg"  # checked first: every test that needs this server also needs ffmpeg to read it

    def __init__(self, workdir: Path, mounts: dict[str, str], *, fps: int = 15, gop: int = 15,
                 size: tuple[int, int] = (640, 360), user: str | None = None, password: str = "") -> None:
        super().__init__(workdir)
        probe = subprocess.run([SYSTEM_PYTHON, "-c", "import gi; gi.require_version('GstRtspServer', '1.0'); "
                                "from gi.repository import GstRtspServer"], capture_output=True)
        if probe.returncode != 0:
            raise ServerMissing("the GStreamer RTSP server is not installed (Debian packages python3-gi "
                                "gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-ugly gstreamer1.0-plugins-good)")
        self.port = free_port()
        self.mounts, self.fps, self.gop, self.size, self.user, self.password = mounts, fps, gop, size, user, password

    def _argv(self) -> list[str]:
        argv = [SYSTEM_PYTHON, str(Path(__file__).with_name("rtsp_server.py")), "--port", str(self.port),
                "--size", f"{self.size[0]}x{self.size[1]}", "--fps", str(self.fps), "--gop", str(self.gop)]
        for name, spec in self.mounts.items():
            argv += ["--mount", f"{name}={spec}"]
        if self.user:
            argv += ["--user", self.user, "--password-env", "ORCHARD_RTSP_TEST_PASSWORD"]
        return argv

    def start(self) -> None:
        env = {**os.environ, "ORCHARD_RTSP_TEST_PASSWORD": self.password}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self._argv(), stdout=out, stderr=subprocess.STDOUT, cwd=self.workdir,
                                         env=env)
        _wait_port(self.port, 30, self.proc, self.log)

    def url(self, mount: str, user: str | None = None, password: str | None = None) -> str:
        auth = f"{user}:{password}@" if user else ""
        return f"rtsp://{auth}127.0.0.1:{self.port}/{mount}"
