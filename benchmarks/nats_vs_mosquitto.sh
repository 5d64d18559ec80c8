#!/bin/bash
# issue 23 final figures (main after the NATS rounds change): NATS vs mosquitto, one worker, same run;
# N NATS workers at equal per-worker load (1 x 100 devices vs 2 x 100)
cd "$(dirname "$0")/.."
git log --oneline -1
for r in 1 2 3; do
  uptime
  .venv/bin/python benchmarks/live.py --server both --devices 100,200 --seconds 20 --keep-going
  uptime
  .venv/bin/python benchmarks/live.py --server nats --workers 2 --devices 200 --seconds 20 --keep-going
done
uptime
