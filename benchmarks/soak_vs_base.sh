#!/usr/bin/env bash
# The 512-bed replay on this checkout and on the previous main, alternated in one run, with the machine and the
# model's FLOP limit measured in the same run:
#   BASE=/work/wt-base-speed bash benchmarks/soak_vs_base.sh [ROUNDS] [soak.py options]
# BASE: a worktree of the previous main with its own venv (git worktree add --detach DIR COMMIT; make .venv/.installed).
set -euo pipefail
BASE=${BASE:?set BASE to a worktree of the previous main with its own .venv}
ROUNDS=${1:-1}
shift || true
ARGS=("$@")
[ ${#ARGS[@]} -gt 0 ] || ARGS=(--patients 512 --hours 0.02 --windows 2)
HERE=$(cd "$(dirname "$0")/.." && pwd)
echo "this checkout: $(git -C "$HERE" rev-parse --short HEAD)$(git -C "$HERE" diff --quiet || echo ' (modified)'); previous main: $(git -C "$BASE" rev-parse --short HEAD)"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
(cd "$HERE" && .venv/bin/python benchmarks/flops.py)
for r in $(seq "$ROUNDS"); do
  for which in base new; do
    dir=$HERE; [ "$which" = base ] && dir=$BASE
    echo "== round $r: $which ($(git -C "$dir" rev-parse --short HEAD)), load average $(cut -d' ' -f1-3 /proc/loadavg)"
    (cd "$dir" && .venv/bin/python benchmarks/soak.py "${ARGS[@]}" 2>&1 | grep -E "beats/s end to end|where the time goes|of segmentation:|FLOP limit|counters")
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
