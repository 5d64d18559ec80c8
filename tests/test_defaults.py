"""The model a source gets by default (issue 20 item 4): real ECG sources get the real-ECG model."""

from ecgmon.core.broker import BrokerConfig
from ecgmon.models.checkpoint import load
from ecgmon.monitor.app import build
from ecgmon.monitor.config import MonitorConfig, default_checkpoint


def test_the_source_kind_decides_the_default_model():
    assert default_checkpoint("replay") == "ecg5000"
    assert {default_checkpoint(s) for s in ("mqtt", "nats", "record")} == {"mitdb"}


def test_real_devices_over_mqtt_get_the_real_ecg_model_without_a_checkpoint(tmp_path):
    cfg = MonitorConfig(source="mqtt", broker=BrokerConfig(url="mqtt://127.0.0.1:1"), ui=False, device="cpu",
                        threads=1, journal=tmp_path / "j.jsonl", learn_state=None)
    b = build(cfg)  # no connection is made until the monitor runs
    mitdb = load("mitdb")
    assert b.monitor.rep == mitdb.rep and b.monitor.rep.kind != "ecg5000"
    assert b.monitor.model_name.startswith(mitdb.name)
    b.monitor.close()
    # asked for, the simulator's ECG5000 devices get the ECG5000 model (what `ecgmon demo` does)
    b = build(MonitorConfig(source="mqtt", checkpoint="ecg5000", broker=BrokerConfig(url="mqtt://127.0.0.1:1"),
                            ui=False, device="cpu", threads=1, journal=tmp_path / "j.jsonl", learn_state=None))
    assert b.monitor.rep.kind == "ecg5000"
    b.monitor.close()
