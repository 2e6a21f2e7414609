"""The worker's `precision` setting reaches the loaded model: auto follows the hardware (device.py),
bf16 / fp32 force it, anything else is refused at start with the variable's name."""

import pytest

from services.worker.runtime import load_runtime
from services.worker.settings import WorkerSettings
from shared.config import SettingsError, settings_from_environ
from shared.model.checkpoint import SHIPPED
from shared.model.device import cpu_has_native_bf16

pytestmark = pytest.mark.unit


def test_the_setting_defaults_to_auto_and_takes_a_forced_precision():
    assert settings_from_environ(WorkerSettings, {}).worker.precision == "auto"
    forced = settings_from_environ(WorkerSettings, {"TUMORSEARCH_WORKER__PRECISION": "fp32"})
    assert forced.worker.precision == "fp32"


def test_an_unknown_precision_is_refused_naming_the_variable():
    with pytest.raises(SettingsError, match="TUMORSEARCH_WORKER__PRECISION"):
        settings_from_environ(WorkerSettings, {"TUMORSEARCH_WORKER__PRECISION": "fp8"})


@pytest.mark.parametrize(("precision", "bf16"), [("bf16", True), ("fp32", False), ("auto", None)])
def test_the_runtime_runs_the_network_in_the_chosen_precision(precision, bf16):
    runtime = load_runtime(SHIPPED, "cpu", precision)
    assert runtime.bf16 is (cpu_has_native_bf16() if bf16 is None else bf16)
