"""The test harness itself works: real Redis, real Orthanc, dcmtk against pynetdicom and Orthanc, no leftovers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from pynetdicom import AE, evt
from pynetdicom.sop_class import Verification

from support.ports import LOCALHOST, port_is_open
from support.processes import pid_alive
from support.servers import start_orthanc, start_redis

pytestmark = pytest.mark.integration

ECHO_AET = "SMOKE-SCP"


@pytest.fixture
def echo_scp(free_port) -> Iterator[tuple[int, list[str]]]:
    """A pynetdicom Verification SCP in a background thread; yields (port, calling AE titles of C-ECHOs seen)."""
    seen: list[str] = []

    def on_echo(event: evt.Event) -> int:
        seen.append(event.assoc.requestor.ae_title)
        return 0x0000

    ae = AE(ae_title=ECHO_AET)
    ae.add_supported_context(Verification)
    port = free_port()
    server = ae.start_server((LOCALHOST, port), block=False, evt_handlers=[(evt.EVT_C_ECHO, on_echo)])
    try:
        yield port, seen
    finally:
        server.shutdown()


def test_redis_answers_ping(redis_server):
    client = redis.Redis.from_url(redis_server.url)
    try:
        assert client.ping() is True
        assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}/0"
    finally:
        client.close()


def test_orthanc_system_reports_version(orthanc):
    system = orthanc.get("/system")
    assert system["Version"], f"expected a version in /system; found {system}"
    assert system["DicomAet"] == orthanc.aet
    assert system["DicomPort"] == orthanc.dicom_port
    assert system["HttpPort"] == orthanc.http_port


def test_orthanc_loads_no_plugins_and_accepts_modalities(orthanc):
    # "explorer.js" is Orthanc Explorer's aggregate of plugin scripts, always listed; not a plugin.
    plugins = [name for name in orthanc.get("/plugins") if name != "explorer.js"]
    assert plugins == [], f"expected no plugins (the fixture must not load Debian's); found {plugins}"
    orthanc.add_modality("listener", "TS-LISTENER", 11112)
    assert "listener" in orthanc.modalities()


def test_dcmtk_echoscu_reaches_pynetdicom_scp(dcmtk, echo_scp):
    port, seen = echo_scp
    done = dcmtk.echoscu(port, called_aet=ECHO_AET, calling_aet="SMOKE-SCU")
    assert done.returncode == 0, f"expected echoscu to succeed; found exit {done.returncode}\n{done.stderr}"
    assert seen == ["SMOKE-SCU"], f"expected the SCP to see one C-ECHO from SMOKE-SCU; found {seen}"


def test_dcmtk_storescu_stores_into_orthanc(dcmtk, orthanc, data_dir: Path):
    dicom_file = data_dir / "dicom-transfer-syntaxes" / "1.dcm"
    assert orthanc.instances() == []
    done = dcmtk.storescu(orthanc.dicom_port, [dicom_file], called_aet=orthanc.aet)
    assert done.returncode == 0, f"expected storescu to succeed; found exit {done.returncode}\n{done.stderr}"
    instances = orthanc.instances()
    assert len(instances) == 1, f"expected Orthanc to hold 1 instance after C-STORE; found {instances}"


def test_servers_are_gone_after_their_context_ends(tmp_path: Path):
    # The fixtures are thin wrappers around these context managers; the session-end hook covers the fixtures.
    with start_redis(tmp_path / "redis") as redis_srv, start_orthanc(tmp_path / "orthanc") as orthanc_srv:
        pids = {"redis": redis_srv.pid, "orthanc": orthanc_srv.pid}
        ports = [redis_srv.port, orthanc_srv.http_port, orthanc_srv.dicom_port]
        assert all(pid_alive(pid) for pid in pids.values())
    alive = {name: pid for name, pid in pids.items() if pid_alive(pid)}
    assert alive == {}, f"expected every server PID gone after its context; found alive {alive}"
    assert not any(port_is_open(port) for port in ports), f"expected ports {ports} closed after stop"
