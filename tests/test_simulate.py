"""The simulator against a broker it cannot reach: it says so and ends on time."""

import asyncio
import time

import pytest

from ecgmon.core.broker import BrokerConfig
from ecgmon.monitor.mosquitto import free_port
from ecgmon.simulators.publisher import SimConfig, publish


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
