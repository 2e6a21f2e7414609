"""`make run`'s demo picks a port for each of its servers whose default is busy. The picks happen before
any of them starts, so one must never be given a port another was just given, even when the kernel offers
the same closed probe port again."""

from __future__ import annotations

from services.demo import system
from shared.broker import embedded
from support.fake_socket import kernel_offering


def test_every_busy_default_gets_its_own_port(monkeypatch, tmp_path):
    monkeypatch.setattr(system, "port_free", lambda host, port: False)
    monkeypatch.setattr(embedded, "socket", kernel_offering([41000, 41000, 41000, 41001, 41001, 41002]))
    monkeypatch.setattr(embedded, "_handed_out", set())
    plan = system.plan({"TUMORSEARCH_HOME": str(tmp_path)})
    chosen = [int(plan.env[variable]) for variable in system.PORT_VARIABLES.values()]
    assert sorted(chosen) == [41000, 41001, 41002], chosen
    assert len(plan.notes) == 3 and all("is in use" in note for note in plan.notes)
