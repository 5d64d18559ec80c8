"""The simulator: against a broker it cannot reach it says so and ends on time; two-lead devices."""

import asyncio
import time

import numpy as np
import pytest

from ecgmon.core.broker import BrokerConfig
from ecgmon.monitor.mosquitto import free_port
from ecgmon.simulators.publisher import SimConfig, publish


def test_free_port_never_names_one_port_twice():
    """A nats-server given the same port for its clients and its MQTT listener failed to start in CI ("bind: address
    already in use"): two binds in a row may get the same ephemeral port once the first socket is closed (a plain
    bind-and-close picker repeated 8 ports in 500 calls here)."""
    ports = [free_port() for _ in range(500)]
    assert len(set(ports)) == len(ports)


@pytest.mark.asyncio
async def test_a_simulator_that_cannot_reach_its_broker_reports_it_and_ends_at_its_duration():
    lines: list[str] = []
    cfg = SimConfig(kind="synthetic", devices=2, duration=2.0, speed=1.0, fmt="int16", labels=False)
    t0 = time.monotonic()
    stats = await asyncio.wait_for(publish(cfg, BrokerConfig(url=f"mqtt://127.0.0.1:{free_port()}",
                                                             client_id="nobody"), report=lines.append), 30)
    assert time.monotonic() - t0 < 15
    assert stats.published == 0 and stats.reconnects >= 1 and stats.lost > 0
    assert lines and "retrying" in lines[0] and "127.0.0.1" in lines[0]


@pytest.mark.asyncio
async def test_two_lead_devices_send_lead_ii_and_v1_and_v1_goes_on_through_lead_iis_lead_off(broker, prefix):
    """``ecgmon simulate --leads 2`` through a real broker: every packet carries lead II (the same samples a one-lead
    device sends) and V1 at the same sample times (binary version 2 and JSON ``leads``); V1 keeps its beats while
    lead II's electrode is off."""
    from ecgmon.core.payload import decode
    from ecgmon.simulators.synthetic import ArtifactConfig

    arts = ArtifactConfig(leadoff_every_s=4.0, leadoff_s=2.0)
    got: dict[str, list] = {}
    for fmt in ("int16", "json"):
        for leads in (1, 2):
            topic = f"{prefix}{fmt}{leads}"
            cfg = SimConfig(kind="synthetic", devices=1, duration=8.0, speed=None, fmt=fmt, labels=False, seed=4,
                            leads=leads, artifacts=arts, topic_prefix=topic)
            async with BrokerConfig(url=broker.url, client_id=f"{topic}-sub").client() as sub:
                await sub.subscribe(f"{topic}/+/samples", qos=1)
                stats = await publish(cfg, BrokerConfig(url=broker.url, client_id=f"{topic}-pub"))
                packets = []
                async with asyncio.timeout(20):
                    async for m in sub.messages:
                        packets.append(decode(bytes(m.payload)))
                        if len(packets) == stats.published:
                            break
            got[f"{fmt}{leads}"] = sorted(packets, key=lambda p: p.seq)
    for fmt in ("int16", "json"):
        one, two = got[f"{fmt}1"], got[f"{fmt}2"]
        assert len(one) == len(two) == 33  # 8 s, 2,000 samples, in packets of 62 (0.25 s at 250 Hz) and the rest
        assert all(p.second is None and p.leads == () for p in one)
        assert all(p.leads == ("II", "V1") and p.second is not None and len(p.second) == len(p.samples) for p in two)
        # the same packets: sequence numbers and sample times (t0 from each run's own start)
        assert ([(p.seq, round(p.t0 - one[0].t0, 6)) for p in one]
                == [(p.seq, round(p.t0 - two[0].t0, 6)) for p in two])
        ii = np.concatenate([p.samples for p in two])
        v1 = np.concatenate([p.second for p in two])
        assert np.array_equal(np.concatenate([p.samples for p in one]), ii)  # lead II as a one-lead device sends it
        off = np.zeros(len(ii), dtype=bool)
        off[1000:1500] = True  # lead II's lead-off, 4-6 s at 250 Hz: flat in II, V1 goes on
        assert np.ptp(ii[off]) == 0 and np.ptp(v1[off]) > 0.3
        assert np.corrcoef(ii[~off], v1[~off])[0, 1] < -0.8  # the same beats, inverted
