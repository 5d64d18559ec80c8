"""The example broker ACL (deploy/mosquitto/ecgmon.acl) against a real mosquitto, and secret hygiene."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import aiomqtt
import pytest
from helpers import Broker

from ecgmon.core.broker import BrokerConfig, credentials

pytestmark = pytest.mark.broker

ACL = Path(__file__).resolve().parents[1] / "deploy" / "mosquitto" / "ecgmon.acl"


@pytest.fixture()
def acl_broker(tmp_path):
    pw = tmp_path / "passwd"
    users = {"monitor": "m-pass", "station": "s-pass", "bed01": "d1-pass", "bed02": "d2-pass"}
    for i, (u, p) in enumerate(users.items()):
        subprocess.run(["mosquitto_passwd", *(["-c"] if i == 0 else []), "-b", str(pw), u, p], check=True,
                       capture_output=True)
    os.chmod(pw, 0o600)
    b = Broker(tmp_path, f"allow_anonymous false\npassword_file {pw}\nacl_file {ACL}\n").start()
    yield b, users
    b.stop()


async def _collect(cfg: BrokerConfig, topic: str, got: list, ready: asyncio.Event) -> None:
    async with cfg.client() as c:
        await c.subscribe(topic, qos=1)
        ready.set()
        async for m in c.messages:
            got.append((m.topic.value, bytes(m.payload)))


@pytest.mark.asyncio
async def test_a_device_may_publish_only_its_own_topic_and_only_monitors_read_all(acl_broker):
    b, users = acl_broker

    def cfg(user: str) -> BrokerConfig:
        return BrokerConfig(url=b.url, client_id=f"acl-{user}", username=user, password=users[user], persistent=False)

    mon_got, dev_got, station_got = [], [], []
    r1, r2, r3 = asyncio.Event(), asyncio.Event(), asyncio.Event()
    tasks = [asyncio.create_task(_collect(cfg("monitor"), "ecg/+/samples", mon_got, r1)),
             asyncio.create_task(_collect(cfg("bed02"), "ecg/+/samples", dev_got, r2)),
             asyncio.create_task(_collect(cfg("station"), "ecg/+/samples", station_got, r3))]
    await asyncio.wait_for(asyncio.gather(r1.wait(), r2.wait(), r3.wait()), 10)
    # one connection per attempt: a broker may also drop the connection of a client whose publish it
    # denies (mosquitto 2.0 sometimes does); either way the message must not get through
    for topic, payload in (("ecg/bed01/samples", b"own"),
                           ("ecg/bed02/samples", b"spoofed"),  # another device's topic: refused
                           ("ecg/bed01/alarms", b"fake alarm")):  # devices cannot write alarms
        try:
            async with cfg("bed01").client() as dev:
                await dev.publish(topic, payload, qos=1)
                await asyncio.sleep(0.2)
        except aiomqtt.MqttError:
            assert payload != b"own"  # only a denied publish may cost the connection
    # a last allowed message: once the monitor has it, anything sent before it would have arrived too
    async with cfg("bed01").client() as dev:
        await dev.publish("ecg/bed01/samples", b"end", qos=1)
    async with asyncio.timeout(10):
        while ("ecg/bed01/samples", b"end") not in mon_got:
            await asyncio.sleep(0.05)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert mon_got == [("ecg/bed01/samples", b"own"), ("ecg/bed01/samples", b"end")]  # the spoofed one never did
    assert dev_got == []  # a device cannot read other devices' streams
    assert station_got == []  # a central station reads alarms, not raw streams


@pytest.mark.asyncio
async def test_only_the_station_account_may_send_a_bed_a_command(acl_broker):
    b, users = acl_broker

    def cfg(user: str, role: str = "") -> BrokerConfig:
        return BrokerConfig(url=b.url, client_id=f"acl-{user}{role}", username=user, password=users[user],
                            persistent=False)

    got: list = []
    ready = asyncio.Event()
    task = asyncio.create_task(_collect(cfg("monitor"), "ecg/+/control", got, ready))
    await asyncio.wait_for(ready.wait(), 10)
    for user, payload in (("bed01", b"device"), ("bed02", b"other device"), ("monitor", b"monitor"),
                          ("station", b"station")):
        try:
            async with cfg(user, "-sender").client() as c:
                await c.publish("ecg/bed01/control", payload, qos=1)
                await asyncio.sleep(0.2)
        except aiomqtt.MqttError:
            assert user != "station"
    async with cfg("station").client() as c:
        await c.publish("ecg/bed01/control", b"end", qos=1)
    async with asyncio.timeout(10):
        while ("ecg/bed01/control", b"end") not in got:
            await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert got == [("ecg/bed01/control", b"station"), ("ecg/bed01/control", b"end")]


@pytest.mark.asyncio
async def test_wrong_password_is_refused(acl_broker):
    b, _ = acl_broker
    with pytest.raises(aiomqtt.MqttError, match=r"[Nn]ot authori"):
        async with BrokerConfig(url=b.url, client_id="x", username="bed01", password="wrong").client():
            pass


def test_credentials_come_from_env_or_file_never_from_argv(tmp_path, monkeypatch):
    monkeypatch.setenv("ECGMON_MQTT_USERNAME", "nurse")
    monkeypatch.setenv("ECGMON_MQTT_PASSWORD", "env-secret")
    assert credentials() == ("nurse", "env-secret")
    f = tmp_path / "pw"
    f.write_text("file-secret\n")
    assert credentials(password_file=f) == ("nurse", "file-secret")
    cfg = BrokerConfig(username="nurse", password="file-secret")
    assert "file-secret" not in repr(cfg) and "file-secret" not in str(cfg)
    with pytest.raises(ValueError, match="cannot read --password-file"):
        credentials(password_file=tmp_path / "missing")
    from ecgmon.cli.main import build_parser

    options = {o for a in build_parser()._actions for o in a.option_strings}
    assert "--password" not in options  # a password on the command line would show in `ps`
