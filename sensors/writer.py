"""The ingest writer: batches of received messages in, validated points durably stored (or spooled) out.

No MQTT in here: `sensors.ingest` hands over batches and acknowledges them once `handle` returns, which is
only after the points are in the store or the fsynced spool and the dead letters are on disk. It runs in a
thread of the ingest process or, by default, in a process of its own (`sensors.worker`).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any, TypeVar

import orjson

from orchard.catalogue import DEVICE_HEALTH
from orchard.logs import event
from orchard.models import INGEST_STATS, DeadLetter, Device, Point, Telemetry
from orchard.records import Records, Sighting
from orchard.settings import Settings, UnknownDevicePolicy
from orchard.site import SiteError, site_for
from orchard.store import StoreError, TimeSeriesStore
from orchard.supervise import Backoff
from sensors.payload import (
    MacOnly,
    Refused,
    Route,
    chirpstack_event,
    parse_chirpstack,
    parse_chirpstack_status,
    parse_native,
    parse_profiled,
    parse_tts,
    route,
    to_points,
)
from sensors.profiles import Profile, profiles
from sensors.registry import replay_held
from sensors.spool import Spool
from sensors.throttle import LetterThrottle, NewDeviceGate

MAX_LAG_SAMPLES = 20_000  # per stats period; the median of the first ones is plenty
# The last payload of each device is kept for the devices page: noted at most this often, and this much of it.
PAYLOAD_EVERY_NS = 300 * 1_000_000_000
PAYLOAD_BYTES = 4096

log = logging.getLogger("orchard.ingest")

# (topic, payload, received_ns): what crosses from the MQTT side to the writer.
Received = tuple[str, bytes | bytearray, int]


@dataclass(slots=True)
class Counters:
    received: int = 0
    stored: int = 0  # messages whose readings went to the store
    spooled: int = 0  # ... or to the disk spool while the store was away
    rejected: int = 0  # messages with a dead-letter entry (fully or partly refused)
    replayed_points: int = 0  # spooled points later written to the store
    throttled: int = 0  # dead letters over a device's limit: counted in a summary letter, not kept
    mac_only: int = 0  # LoRaWAN frames without application data (fPort 0): nothing to store, nothing wrong


def _today() -> str:
    return time.strftime("%Y-%m-%d", time.gmtime())


T = TypeVar("T")


def _once_a_day(pending: dict[str, T], noted: dict[str, str], note: Callable[[str, T], None]) -> None:
    """Note each device's news at most once per UTC day; when the records DB is away, the next one tries again."""
    day = _today()
    for device, news in pending.items():
        if noted.get(device) == day:
            continue
        try:
            note(device, news)
        except Exception as e:
            event(log, "device_note_failed", logging.WARNING, device=device, error=type(e).__name__)
            continue
        noted[device] = day


def _tts_eui(payload: bytes | bytearray) -> str | None:
    try:
        ids = orjson.loads(payload).get("end_device_ids", {})
    except (orjson.JSONDecodeError, AttributeError):
        return None
    eui = ids.get("dev_eui") if isinstance(ids, dict) else None
    return eui.lower() if isinstance(eui, str) else None


SOIL_PROBE_READINGS = frozenset({"soil_vwc_pct", "soil_temp_c", "soil_ec_dsm", "soil_ph", *DEVICE_HEALTH})


def soil_only(t: Telemetry) -> tuple[Telemetry | None, list[str]]:
    """A soil probe's readings, without any that claim to be about the air (a probe whose decoder calls its soil
    temperature "temperature" would otherwise feed the frost and Psa rules): those are refused with the reason."""
    wrong = [name for name in t.readings if name not in SOIL_PROBE_READINGS]
    if not wrong:
        return t, []
    problems = [f"wrong_sensor: soil probe {t.device} sent {name}, which a soil probe does not measure; the frost "
                "and disease rules read air sensors only (give the device its model's profile, or register it as a "
                "weather_station if it has an air sensor)" for name in wrong]
    kept = {k: v for k, v in t.readings.items() if k in SOIL_PROBE_READINGS}
    if not kept and not t.depths and t.battery_v is None:
        return None, problems
    return replace(t, readings=kept), problems


def _site_kinds(settings: Settings) -> dict[str, str]:
    try:
        return {d.id: str(d.kind) for d in site_for(settings).devices}
    except SiteError:
        return {}


def _site_profiles(settings: Settings) -> dict[str, str]:
    """Device id -> profile id from the site file's devices (an unreadable site file gives none: ingest stores
    what it can and `orchard check` names the site file's mistake)."""
    try:
        return {d.id: d.profile for d in site_for(settings).devices if d.profile}
    except SiteError:
        return {}


class BatchWriter:
    def __init__(self, settings: Settings, store: TimeSeriesStore, records: Records, spool: Spool) -> None:
        self.settings = settings
        self.cfg = settings.ingest
        self.store = store
        self.records = records
        self.spool = spool
        self.counters = Counters()
        self._statuses: dict[str, str] = {}
        self._by_eui: dict[str, Device] = {}
        self._devices: dict[str, Device] = {}
        # Fields a device's profile does not know: noted in the registry once per device and day, not per uplink.
        self._unmapped: dict[str, list[str]] = {}
        self._unmapped_noted: dict[str, str] = {}
        self._skews: dict[str, int] = {}  # device -> how far off its gateway's clock was (s), to note once a day
        self._skews_noted: dict[str, str] = {}
        self._payloads: dict[str, tuple[str, int, str, bytes]] = {}  # device -> its last payload, to note
        self._payload_noted: dict[str, int] = {}  # device -> when its last payload was noted (receipt ns)
        self._site_profiles = _site_profiles(settings)
        self._site_kinds = _site_kinds(settings)
        self._registry_read = 0.0
        self._last_stats = time.monotonic()
        # How late readings arrive (receipt minus the device's own timestamp), this stats period: when the broker
        # holds a backlog for ingest, what arrives now was measured minutes ago. Analytics alarms on it
        # (ingest_behind) well before the broker's queue for ingest (max_queued_bytes) is full.
        self._lags: list[int] = []
        # Last-seen times are not worth an fsync per batch: gathered here, written every few seconds.
        self._sightings: dict[str, Sighting] = {}
        self._sightings_flushed = time.monotonic()
        keep = settings.retention
        self.throttle = LetterThrottle(keep.dead_letters_per_device_min, keep.dead_letters_per_min)
        self.new_devices = NewDeviceGate(self.cfg.new_devices_per_hour)
        self.refresh_registry(force=True)

    # -- what the MQTT side calls -------------------------------------------------------------------------------
    def handle(self, batch: list[Received]) -> None:
        """Store, spool or dead-letter every message of the batch; when this returns they may be acked."""
        self.refresh_registry()
        if len(self.spool):
            self._replay_spool()  # keep order: what waits in the spool goes first
        points: list[Point] = []
        origin: dict[int, Received] = {}  # id(point) -> its message, to dead-letter what the store refuses
        letters: list[tuple[DeadLetter, bool]] = []
        sightings = self._sightings
        presence: list[tuple[str, str, str, bool, int]] = []
        policy = self.settings.unknown_devices
        tol = self.cfg.future_tolerance_s * 1_000_000_000
        stored_msgs = 0

        for m in batch:
            topic, payload, rx = m
            r = None
            named: str | None = None
            try:
                r = route(topic, self.settings.mqtt_prefix)
                if r.kind == "status":
                    state = payload.strip().lower()
                    if state not in (b"online", b"offline"):
                        raise Refused(f"bad_status: {payload[:40]!r} is not online/offline")
                    presence.append((r.device, r.site, r.plot, state == b"online", rx))
                    continue
                if r.kind == "chirpstack_other":
                    continue
                unmapped: list[str] = []
                if r.kind.startswith("chirpstack") or r.kind == "tts":
                    dev = self._network_device(r, payload)
                    named = dev.device  # its dead letters are filed under the registered device, not the EUI
                if r.kind == "chirpstack":
                    skew: list[int] = []
                    telemetry, problems = parse_chirpstack(payload, dev, rx, tol, self._profile_of(dev), unmapped,
                                                           skew)
                    if skew:
                        self._skews[dev.device] = skew[0]
                elif r.kind == "tts":
                    telemetry, problems = parse_tts(payload, dev, rx, tol, self._profile_of(dev), unmapped)
                elif r.kind == "chirpstack_status":
                    telemetry, problems = parse_chirpstack_status(payload, dev, rx)
                    if telemetry is None:
                        continue
                elif r.kind == "chirpstack_join":
                    chirpstack_event(payload)  # a Protobuf-encoded join is as wrong as a Protobuf uplink
                    sightings[dev.device] = Sighting(dev.device, dev.site, dev.plot, rx, str(dev.status))
                    event(log, "lorawan_join", device=dev.device)
                    continue
                elif r.kind == "chirpstack_log":
                    body = chirpstack_event(payload)
                    if str(body.get("code", "")).upper() == "UPLINK_CODEC":
                        raise Refused(f"codec_error: ChirpStack's codec failed on this device's uplink: "
                                      f"{str(body.get('description', ''))[:300]} (check the codec of its device "
                                      "profile in ChirpStack)")
                    continue
                elif (profile := self._profile_of(self._devices.get(r.device))) is not None and (
                        profile.kind == "modbus" or b'"readings"' not in payload):
                    telemetry, decoded = parse_profiled(r, profile, payload, rx)
                    problems, unmapped = decoded.problems, decoded.unmapped
                else:
                    telemetry, problems = parse_native(r, payload, rx, tol)
                if unmapped and telemetry is not None:
                    self._unmapped[telemetry.device] = unmapped
                if telemetry is not None and self._kind_of(telemetry.device) == "soil_probe":
                    telemetry, wrong = soil_only(telemetry)
                    problems = [*problems, *wrong]
                if telemetry is not None:
                    status = self._statuses.get(telemetry.device)
                    if status == "rejected":
                        raise Refused(f"rejected_device: {telemetry.device} was rejected by an operator")
                    if status is None and not self.new_devices.admit(telemetry.device):
                        raise Refused(f"too_many_new_devices: more than {self.new_devices.per_hour} unknown "
                                      f"device ids this hour; {telemetry.device} is not registered")
                    if status not in ("approved", "new"):
                        if policy is UnknownDevicePolicy.HOLD:
                            letters.append((self._letter(m, r, telemetry.device, "held_unknown_device: waiting for "
                                                         "an operator to approve the device"), True))
                            sightings[telemetry.device] = Sighting(telemetry.device, telemetry.site, telemetry.plot,
                                                                   rx, "pending")
                            continue
                        if policy is UnknownDevicePolicy.REJECT:
                            sightings[telemetry.device] = Sighting(telemetry.device, telemetry.site, telemetry.plot,
                                                                   rx, "pending")
                            raise Refused(f"unknown_device: {telemetry.device} is not registered")
                    if telemetry.time_ns != rx and len(self._lags) < MAX_LAG_SAMPLES:  # a device timestamp
                        self._lags.append(rx - telemetry.time_ns)
                    new = to_points(telemetry)
                    for p in new:
                        origin[id(p)] = m
                    points.extend(new)
                    stored_msgs += 1
                    if rx - self._payload_noted.get(telemetry.device, 0) >= PAYLOAD_EVERY_NS:
                        self._payload_noted[telemetry.device] = rx
                        self._payloads[telemetry.device] = (telemetry.device, rx, topic, bytes(payload[:PAYLOAD_BYTES]))
                    prev = sightings.get(telemetry.device)
                    if prev is None or telemetry.time_ns > prev.time_ns:
                        sightings[telemetry.device] = Sighting(
                            telemetry.device, telemetry.site, telemetry.plot, telemetry.time_ns,
                            "approved" if status == "approved" else "new")
                if problems:
                    letters.append((self._letter(m, r, r.device, "; ".join(problems)), False))
            except MacOnly:
                self.counters.mac_only += 1
            except Refused as e:
                letters.append((self._letter(m, r, named or (r.device if r else None), str(e)), False))
            except Exception as e:  # a bug must not lose the message: keep it with the error
                log.exception("payload_handling_error")
                letters.append((self._letter(m, r, r.device if r else None, f"internal_error: {e!r}"), False))

        if points:
            for rej in self._store_or_spool(points, stored_msgs):
                letters.append((self._letter(origin[id(rej.point)], None, rej.point.tags.get("device"),
                                             f"store_rejected: {rej.reason}"), False))
        # Dead letters must be on disk before their messages are acked; a new device is recorded at once. Each
        # is capped and throttled first (what is over is counted in a summary letter, sensors/throttle.py).
        letters = self._bounded(letters)
        new_devices = [s for d, s in sightings.items() if d not in self._statuses]
        if letters or presence or new_devices:
            self._record(letters, new_devices, presence)
            for s in new_devices:
                self._statuses.setdefault(s.device, s.status)
        self.counters.received += len(batch)
        self.counters.rejected += len(letters)

    def tick(self, final: bool = False) -> None:
        """Periodic work, called between batches and when idle: registry, spool replay, last-seen, stats, the
        summaries of throttled dead letters."""
        self.refresh_registry()
        if len(self.spool):
            self._replay_spool()
        if summaries := self.throttle.summaries():
            self._record([(x, False) for x in summaries], (), ())
        if self._sightings and (final or time.monotonic() - self._sightings_flushed > 5):
            self._record([], list(self._sightings.values()), [])
            self._sightings = {}
            self._sightings_flushed = time.monotonic()
            if self._payloads:  # after the sightings: a device's first payload needs its row
                payloads, self._payloads = list(self._payloads.values()), {}
                try:
                    self.records.note_payloads(payloads)
                except Exception as e:  # the records DB is away: the next payload of each device tries again
                    event(log, "device_note_failed", logging.WARNING, devices=len(payloads), error=type(e).__name__)
                    for device, *_ in payloads:
                        self._payload_noted.pop(device, None)
        if self._unmapped:
            self._note_unmapped()
        if self._skews:
            self._note_skews()
        if final or time.monotonic() - self._last_stats >= self.cfg.stats_interval_s:
            self._log_stats()

    def _kind_of(self, device: str) -> str:
        reg = self._devices.get(device)
        return (reg.kind if reg is not None and reg.kind else None) or self._site_kinds.get(device, "")

    def _network_device(self, r: Route, payload: bytes | bytearray) -> Device:
        """The registered device a network server's event is about: by devEUI (ChirpStack's topic; The Things
        Stack's end_device_ids.dev_eui), else by The Things Stack's device id."""
        if r.kind == "tts":
            eui = _tts_eui(payload)
            dev = self._by_eui.get(eui) if eui else None
            dev = dev or self._devices.get(r.device)
            if dev is None:
                raise Refused(f"unknown_device: The Things Stack device {r.device[:64]!r} (devEUI {eui or '?'}) is "
                              "not registered: add it with its --dev-eui")
            return dev
        dev = self._by_eui.get(r.device)
        if dev is None:
            raise Refused(f"unknown_dev_eui: {r.device} is not registered to any device")
        return dev

    def _profile_of(self, device: Device | None) -> Profile | None:
        """The device's profile: the registry's (`orchard admin device add --profile`), else the site file's."""
        if device is None:
            return None
        chosen = device.profile or self._site_profiles.get(device.device)
        return profiles().get(chosen) if chosen else None  # an unknown id is refused when it is set

    def _note_unmapped(self) -> None:
        """The day's first report of fields a device's profile does not know: logged and kept in the registry
        for the devices page; the readings it did know are stored as usual."""
        pending, self._unmapped = self._unmapped, {}

        def note(device: str, fields: list[str]) -> None:
            if self.records.note_unmapped(device, fields, _today()):
                event(log, "unmapped_fields", logging.WARNING, device=device, fields=",".join(fields)[:300])
        _once_a_day(pending, self._unmapped_noted, note)

    def _note_skews(self) -> None:
        """A gateway clock found more than 5 minutes off: kept on the device, once a day."""
        pending, self._skews = self._skews, {}

        def note(device: str, skew: int) -> None:
            self.records.note_clock_skew(device, skew)
            event(log, "gateway_clock_skew", logging.WARNING, device=device, skew_s=skew)
        _once_a_day(pending, self._skews_noted, note)

    def close(self) -> None:
        self.store.close()
        self.records.close()

    def refresh_registry(self, force: bool = False) -> None:
        """Approvals made from the CLI or dashboard take effect within a few seconds. While the records DB is
        away the registry last read stands (at start, `force` lets the error through: nothing is known yet)."""
        if force or time.monotonic() - self._registry_read > 5:
            try:
                devices = self.records.devices()
                statuses = {d.device: str(d.status) for d in devices}
                by_eui = {d.dev_eui.lower(): d for d in devices if d.dev_eui}
            except Exception as e:
                if force:
                    raise
                self._registry_read = time.monotonic()  # try again in 5 s, not on every message
                event(log, "registry_read_failed", logging.WARNING, error=type(e).__name__,
                      detail=str(e).splitlines()[0][:200] if str(e) else "")
                return
            self._statuses, self._by_eui = statuses, by_eui
            self._devices = {d.device: d for d in devices}
            self._registry_read = time.monotonic()
            for device in self.records.approved_with_held():  # approved from the dashboard
                try:
                    result = replay_held(device, self.settings, self.records, self.store)
                except Exception as e:  # the store or the records DB away: the held readings wait
                    event(log, "held_replay_failed", logging.WARNING, device=device, error=str(e)[:200])
                    break
                event(log, "held_replayed", device=device, replayed=result.replayed, refused=result.still_refused)

    # -- internals --------------------------------------------------------------------------------------------
    def _record(self, letters: list[tuple[DeadLetter, bool]], sightings: Any, presence: Any) -> None:
        """Dead letters, sightings and presence in one transaction, retried in place until the records DB takes
        them: the batch's points are already stored and must not be written again."""
        backoff = Backoff(base_s=0.5, cap_s=5)
        while True:
            try:
                self.records.record_batch(letters, sightings, presence)
                return
            except Exception as e:  # the records DB is away, or the disk full: hold the acks until it is back
                pause = backoff.failed()
                event(log, "records_write_failed", logging.WARNING, error=type(e).__name__,
                      detail=str(e).splitlines()[0][:200] if str(e) else "", letters=len(letters),
                      retry_s=pause, in_a_row=backoff.failures)
                time.sleep(pause)

    def _bounded(self, letters: list[tuple[DeadLetter, bool]]) -> list[tuple[DeadLetter, bool]]:
        """Throttled per device and in all, non-held payloads capped; plus the summaries now due."""
        cap = self.settings.retention.dead_letter_payload_bytes
        kept = [(x if held else x.capped(cap), held) for x, held in letters if self.throttle.admit(x)]
        self.counters.throttled += len(letters) - len(kept)
        return kept + [(x, False) for x in self.throttle.summaries()]

    @staticmethod
    def _letter(m: Received, r: Route | None, device: str | None, reason: str) -> DeadLetter:
        return DeadLetter(m[2], m[0], bytes(m[1]), reason, device, r.site if r else None, r.plot if r else None)

    def _store_or_spool(self, points: list[Point], n_msgs: int) -> tuple[Any, ...]:
        if not len(self.spool):  # keep order: nothing overtakes what is already spooled
            try:
                result = self.store.write(points)
                self.counters.stored += n_msgs
                return result.rejected
            except StoreError as e:
                event(log, "store_unavailable", logging.WARNING, error=str(e)[:300], points=len(points))
        while True:
            try:
                path = self.spool.append(points)
                break
            except OSError:
                log.exception("spool_write_failed")
                time.sleep(1)
        self.counters.spooled += n_msgs
        event(log, "batch_spooled", file=path.name, points=len(points))
        return ()

    def _replay_spool(self) -> None:
        for path in self.spool.files():
            points = self.spool.read(path)
            try:
                result = self.store.write(points)
            except StoreError:
                return  # still away; the next batch tries again
            if result.rejected:
                letters = [(DeadLetter(time.time_ns(), "spool", repr(r.point).encode(),
                                       f"store_rejected: {r.reason}", r.point.tags.get("device")), False)
                           for r in result.rejected]
                self._record(letters, (), ())
            self.spool.remove(path)
            self.counters.replayed_points += result.written
            event(log, "spool_replayed", file=path.name, points=result.written, left=len(self.spool))

    def _log_stats(self) -> None:
        self._last_stats = time.monotonic()
        c: dict[str, float] = {**asdict(self.counters), "spool_files": len(self.spool)}
        if self._lags:
            lags = sorted(self._lags)
            c |= {"lag_p50_s": round(lags[len(lags) // 2] / 1e9, 3), "lag_max_s": round(lags[-1] / 1e9, 3)}
            self._lags = []
        event(log, "ingest_stats", logging.INFO, **c)
        # Best effort: the counters are in the log line too, and the spool covers the data itself.
        with contextlib.suppress(StoreError):
            self.store.write([Point(INGEST_STATS, {"client_id": self.cfg.client_id}, c, time.time_ns())])
