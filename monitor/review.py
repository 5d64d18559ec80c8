"""``ecgmon review JOURNAL --out DIR``: one HTML page of a shift's alarms, each with its ECG strip.

The page is self-contained (inline SVG, no scripts, no network): each physiological alarm, newest
first, with its priority, condition and message, when it was raised, acknowledged and cleared (from
the journal), and its strip (:mod:`ecgmon.monitor.strips`): the ECG on a 0.2 s / 0.5 mV grid, the
alarm's beat marked, every beat with its verdict (normal green, abnormal magenta, learning blue) and
its loss against the threshold.  Replayed or recorded data is labelled so on every strip.
"""

from __future__ import annotations

import html
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ecgmon.monitor.alarms import read_journal
from ecgmon.monitor.strips import read_strips, strips_path

COLOUR = {"normal": "#1a7f37", "abnormal": "#b0009a", "learning": "#1f5fbf", "noisy": "#b58900"}
PRIORITY = {"high": "#c00000", "medium": "#b58900", "low": "#008080"}
REPLAY_TAG = " <span class=replay>REPLAY / RECORDING - not a live patient</span>"
CSS = ("body{font-family:sans-serif;margin:1.5em;color:#222} h2{font-size:1.05em;margin:.2em 0} "
       ".prio{color:#fff;padding:0 .4em;border-radius:3px} "
       ".replay{background:#eee;color:#000;padding:0 .4em;font-size:.8em} "
       "section{border-top:1px solid #ddd;padding:.6em 0} .dim{color:#777} p{margin:.2em 0}")


def _place(where: tuple[Any, Any] | None) -> str:
    """`` (at 615.996 s, sample 153999)``: where a transition lies in the bed's record, from its line's ``record_s``
    and ``beat_index`` (a reviewer matches it to the console's log and the strip; the wall-clock time of a replay
    does not); empty when the line has neither."""
    if where is None:
        return ""
    index, record_s = where
    ok = [isinstance(v, int | float) and not isinstance(v, bool) and np.isfinite(v) for v in (index, record_s)]
    parts = ([f"at {float(record_s):.3f} s"] if ok[1] else []) + ([f"sample {int(index)}"] if ok[0] else [])
    return f" ({', '.join(parts)})" if parts else ""


def _stamp(t: float | None) -> str:
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else "-"
    except (OverflowError, OSError, ValueError):  # a damaged line's time (1e300): no date, not a failed page
        return "(time out of range)"


def _num(v: object) -> float:
    """A journal field as a number (a damaged line's text or nonsense: 0)."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return 0.0
    return float(v) if np.isfinite(v) else 0.0


def svg(strip: dict[str, Any], *, width: int = 1000, height: int = 180) -> str:
    """The strip on ECG paper: 0.2 s and 0.5 mV major grid lines, beats marked by verdict; missing samples (NaN: a
    device's nulls, a recording's gap) leave a gap in the trace."""
    fs = float(strip["fs"])
    x = np.asarray(strip["samples"], dtype=np.float64)
    start = int(strip["start"])
    if len(x) < 2:
        return '<p class="dim">no samples were held for this alarm</p>'
    ok = np.isfinite(x)
    if ok.sum() < 2:
        return '<p class="dim">the signal was missing over this strip</p>'
    dur = len(x) / fs
    lo, hi = float(np.percentile(x[ok], 0.5)), float(np.percentile(x[ok], 99.5))
    pad = max(0.25, 0.15 * (hi - lo))
    lo, hi = lo - pad, hi + pad
    top, bottom = 18, height - 4

    def px(i: float) -> float:
        return (i - start) / len(x) * width

    def py(v: float) -> float:
        return top + (hi - v) / (hi - lo) * (bottom - top)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img">', f'<rect width="{width}" height="{height}" fill="#fff8f8"/>']
    for k in range(int(dur / 0.2) + 1):
        xx = k * 0.2 / dur * width
        parts.append(f'<line x1="{xx:.1f}" y1="{top}" x2="{xx:.1f}" y2="{bottom}" stroke="#f4c0c0" '
                     f'stroke-width="{1.2 if k % 5 == 0 else 0.5}"/>')
    mv = np.arange(np.ceil(lo / 0.5) * 0.5, hi, 0.5)
    for v in mv:
        y = f"{py(v):.1f}"
        parts.append(f'<line x1="0" y1="{y}" x2="{width}" y2="{y}" stroke="#f4c0c0" stroke-width="0.8"/>')
    step = max(1, len(x) // (2 * width))
    idx = np.arange(0, len(x), step)
    # one polyline per run of samples present
    runs = np.split(idx, np.flatnonzero(np.diff(ok[idx].astype(np.int8))) + 1)
    for run in (r for r in runs if len(r) and ok[r[0]]):
        pts = " ".join(f"{i / len(x) * width:.1f},{py(v):.1f}" for i, v in zip(run, x[run], strict=True))
        parts.append(f'<polyline points="{pts}" fill="none" stroke="#111" stroke-width="1"/>')
    onset = px(float(strip["onset"]))
    parts.append(f'<line x1="{onset:.1f}" y1="{top - 6}" x2="{onset:.1f}" y2="{bottom}" stroke="#c00000" '
                 'stroke-dasharray="4 3" stroke-width="1.2"/>')
    for index, verdict, loss, thr in strip["beats"]:
        bx = px(float(index))
        c = COLOUR.get(verdict, "#555")
        parts.append(f'<path d="M{bx - 5:.1f},{top - 2} L{bx + 5:.1f},{top - 2} L{bx:.1f},{top + 7} Z" fill="{c}">'
                     f'<title>{html.escape(verdict)}: loss {loss:.4f} / threshold {thr:.4f}</title></path>')
    parts.append(f'<text x="4" y="{height - 8}" font-size="10" fill="#a05050">0.2 s / 0.5 mV per large square'
                 f'</text></svg>')
    return "".join(parts)


def render(journal: str | Path | Sequence[str | Path], out: str | Path) -> tuple[Path, dict[str, int]]:
    """Write ``out/review.html`` from one journal or several (the workers' of a NATS cluster, a station's) and
    their strips; the page and what it holds.  Several journals make one view of every bed: an alarm is one
    entry however many journals hold it (a takeover continues the same id in the next worker's journal: raised in
    one, cleared in the other), with the journals that hold it named.

    Raises FileNotFoundError for a journal that does not exist."""
    journals = [Path(journal)] if isinstance(journal, str | Path) else [Path(j) for j in journal]
    out = Path(out)
    for j in journals:
        if not j.is_file():
            raise FileNotFoundError(f"{j}: no such journal")
    life: dict[str, dict[str, float]] = {}
    # where each transition lies on its bed's strip: (sample index, seconds into the record), as its line says
    place: dict[str, dict[str, tuple[Any, Any]]] = {}
    alarms: dict[str, dict[str, Any]] = {}
    where: dict[str, list[str]] = {}
    judged_by: dict[str, str] = {}
    by_id: dict[str, dict[str, Any]] = {}
    bad = bad_strips = 0
    for j in journals:
        rows, n_bad = read_journal(j)
        strips, n_bad_strips = read_strips(strips_path(j))
        bad, bad_strips = bad + n_bad, bad_strips + n_bad_strips
        for r in rows:
            if not isinstance(r, dict) or "id" not in r:
                bad += 1  # JSON, but no alarm transition
                continue
            aid = str(r["id"])
            when = _num(r.get("time"))
            states = life.setdefault(aid, {})
            state = str(r.get("state"))
            if state not in states or when < states[state]:  # the first journal to note each transition
                states[state] = when
                place.setdefault(aid, {})[state] = (r.get("beat_index"), r.get("record_s"))
            if j.name not in where.setdefault(aid, []):
                where[aid].append(j.name)
            if r.get("kind") == "physiological" and r.get("state") == "active" and aid not in alarms:
                alarms[aid] = r
            if r.get("origin"):  # a station's copy names the worker that judged it, whichever journal came first
                judged_by[aid] = str(r["origin"])
        for st in strips:  # a complete strip over an incomplete one
            sid = st["alarm"]["id"]
            if sid not in by_id or (st["complete"] and not by_id[sid]["complete"]):
                by_id[sid] = st
    sections = []
    several = len(journals) > 1
    for aid, a in sorted(alarms.items(), key=lambda kv: -_num(kv[1].get("time"))):
        st = life.get(aid, {})
        prio = str(a.get("priority"))
        strip = by_id.get(aid)
        replay = REPLAY_TAG if strip and strip["replay"] else ""
        head = (f'<h2><span class=prio style="background:{PRIORITY.get(prio, "#555")}">{html.escape(prio.upper())}'
                f'</span> {html.escape(str(a.get("patient")))}: {html.escape(str(a.get("condition")))}{replay}</h2>')
        origin = f" · judged by {html.escape(judged_by[aid])}" if aid in judged_by else ""
        held = f' · in {html.escape(", ".join(where.get(aid, [])))}' if several else ""
        at = place.get(aid, {})
        times = (f'<p>raised {_stamp(st.get("active"))}{_place(at.get("active"))} · acknowledged '
                 f'{_stamp(st.get("acknowledged"))}{_place(at.get("acknowledged"))} · cleared '
                 f'{_stamp(st.get("cleared"))}{_place(at.get("cleared"))} · '
                 f'{html.escape(str(a.get("message", "")))}{origin}{held}</p>')
        try:
            body = svg(strip) if strip else '<p class="dim">no strip was kept for this alarm (journal only)</p>'
        except (ValueError, TypeError, KeyError, ZeroDivisionError, OverflowError):  # a damaged strip line
            body = '<p class="dim">the strip of this alarm is unreadable (a damaged strips line)</p>'
            bad_strips += 1
        if strip and not strip["complete"]:
            body += '<p class="dim">the monitor stopped before the strip was complete</p>'
        sections.append(f"<section>{head}{times}{body}</section>")
    counts = {"alarms": len(alarms), "strips": sum(1 for a in alarms if a in by_id),
              "journal_skipped": bad, "strips_skipped": bad_strips}
    legend = " ".join(f'<b style="color:{c}">&#9660; {v}</b>' for v, c in COLOUR.items())
    skipped = (f"{bad} unreadable journal lines and {bad_strips} unreadable strip lines were skipped."
               if bad or bad_strips else "")
    page = "\n".join([
        '<!doctype html><html lang="en"><head><meta charset="utf-8">',
        f"<title>ecgmon review: {html.escape(', '.join(j.name for j in journals))}</title><style>{CSS}</style>"
        "</head><body>",
        f"<h1>Alarm review: {html.escape(', '.join(map(str, journals)))}</h1>",
        f'<p>{counts["alarms"]} physiological alarms, {counts["strips"]} with their ECG strip; newest first. '
        f"Beats: {legend} (hover for loss and threshold); dashed red line: the alarm's beat. {skipped}</p>",
        "".join(sections) or "<p>no physiological alarms in this journal</p>",
        "</body></html>", ""])
    out.mkdir(parents=True, exist_ok=True)
    path = out / "review.html"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    return path, counts
