"""Two-lead QRS agreement: a beat the first lead found in noise, which a second lead that sees the heart does not
confirm, is no beat.

Electrode motion and muscle noise reach the leads of a bed unequally (each electrode pair moves on its own), while a
QRS shows on every lead at the same moment: multi-lead detection is how monitors keep their beat count under noise
(ANSI/AAMI EC57 reports multi-lead detectors on the MIT-BIH Noise Stress Test; signal-quality indices such as bSQI
score a lead by the agreement of detections: Li Q, Mark RG, Clifford GD, Robust heart rate estimation from multiple
asynchronous noisy sources using signal quality indices and a Kalman filter, Physiol Meas 29(1):15-32, 2008).

Rule (:class:`LeadAgreement`): a beat of the first lead whose stretch failed its signal-quality index
(``Beat.noisy``) is dropped when the second lead has no QRS within ``tolerance_s`` (150 ms, EC57's match window) of
its fiducial, and the second lead is *reliable* there: of its last ``last`` (20) QRS, at least ``precision`` (0.9)
had a QRS of the first lead within ``tolerance_s`` (it is not in noise itself, nor a lead whose detector counts T
waves), the newest of them within ``fresh_s`` (3 s: it still sees the heart, not a lead gone quiet without going
flat), and their median interval at most ``rate_ratio`` (1.8) times the first lead's median interval between clean
beats (it sees every beat: not a lead that shows every other QRS). Beats in clean stretches are never dropped: a
second lead that misses a kind of beat (the V1 lead of MIT-BIH 208 misses 151 of its premature ventricular complexes)
costs nothing there; a beat that the second lead cannot judge is kept. The beat after a dropped one gets its RR
interval (and a window beat its prematurity channel, which the model reads) from the last beat kept, not from the
noise.

Chosen on the MIT-BIH DS1 records and the SVDB development half (two leads each), its effect looked at on NSTDB 118
(in-sample there): `ecgmon evaluate --protocol qrs|nstdb` one lead (``--no-second-lead``) against two, FN / FP: DS1
92 / 82 -> 96 / 72 (108: 5/26 -> 8/20), SVDB development half 68 / 193 -> 69 / 169, NSTDB 118 12 dB 0 / 19 -> 0 / 16,
6 dB 27 / 291 -> 28 / 151 (docs/recordings.md). The same rule on every beat, noisy or not, cost DS1 282 true beats;
``precision`` 0.8 and a 100 ms window lost more true beats on DS1 and SVDB; a recall condition (the first lead's last
20 clean beats found by the second) kept most false beats at 6 dB (235 of 291: in noise the index rates many false
beats clean). ``fresh_s`` and ``rate_ratio`` came from a newcomer's synthetic leads (quiet, every other QRS), with
the NSTDB 6 dB false beats measured for harm (window beats of the default representation: 150 with the freshness
check alone, 155 with a rate check against the beats kept, 150 with the final one, against the clean beats). The
limits are round numbers, not fitted.

The other way (``insert``): a QRS the second lead found where the first lead showed none is a beat.  A first lead
can lose the heart for seconds while the second sees it: its amplifier saturated and recovering after a baseline
step (MIT-BIH 116 at 1355-1361 s and 1391-1396 s: 16 beats), an electrode pulled on that lead alone.  Cross-lead
search-back, after Pan and Tompkins' search-back over a missed beat's interval (Pan J, Tompkins WJ, A real-time QRS
detection algorithm, IEEE Trans Biomed Eng 32(3):230-236, 1985: 1.66 times the mean RR) and the multi-lead
detection of monitors: a QRS of the second lead is a beat where the first lead has no QRS within ``tolerance_s``
of it and the first lead's stretch without a QRS around it (from the last beat of the first lead that left to its
next QRS) is at least ``insert_gap`` times the median interval between clean beats and ``insert_gap_s`` long, the
second lead was reliable (above) at the stretch's start and its stretch passed its own signal-quality index, the QRS
lies at least ``insert_space`` of that median from the beats beside it, and its window is a QRS as the second lead
shows them: it correlates ``insert_like`` (0.8) or more with one of the second lead's last ``insert_templ`` (16)
windows of QRS the first lead confirmed, its peak-to-peak within ``insert_amp`` (2x) of that one's (one of them,
not their median: a bed's premature ventricular complexes that both leads showed count too; against the median,
edited copies of MIT-BIH 203 and 207 whose first lead was flat for 40 s kept 53 and 9 of their beats missing, 22
and 4 against any one).  That last
condition keeps out what a second lead's detector takes for QRS where the heart gives none: the P waves of a heart
block's pause, an atrial fibrillation's coarse f waves in a long interval, an electrode tap, noise, fibrillatory
waves (a reviewer's synthetic records, session 49: 10 false beats over three pauses of 3.2-4 s, 8 in an atrial
fibrillation's intervals of 2.1-2.8 s, 7 in heavy noise, 5 at a VF's onset; none with it), and a ventricular
complex unlike any of those (left out: the second lead's own lethal watch judges a VT).  The beat is the second
lead's (its window, its heart rate), marked ``lead`` 1 and noisy (no verdict: the shown lead cannot be read
there); the beats after it get their intervals from it.  It is decided once the first lead has a QRS after it or
has gone ``insert_lag_s`` (2.5 s: the first lead's detector decides a QRS up to about 2.1 s after it, on finding
its levels again after a long stretch without one) past it, or the stream ends (``flush(end=True)``).  A shorter
stretch gains a beat only where the first lead's own detector passed over a candidate within ``tolerance_s`` of the
second lead's QRS (``insert_passed``, session 57): one past its refractory period at half its threshold or more
(``DetectorConfig.passed_frac``) that it called a T wave by Pan and Tompkins' slope rule, implausible, or under the
threshold (``Segmenter.passed``), and that does not recur (one at the same delay, within ``passed_recur_s``, after
``passed_recur`` or more of the first lead's ``passed_recur_beats`` QRS before it is a wave of every beat: a tall T
wave); every other condition as above.  A premature beat 0.3-0.4 s after a tall one, its slope under half that beat's,
is a T wave to the first lead's detector (MIT-BIH 203's ventricular beats on MLII) while the second lead shows a QRS
like its others: DS1 FN 80 -> 70, SVDB development half 61 -> 53, no false beat more (docs/recordings.md).  Without
the candidate, shorter stretches gain nothing: with no floor, DS1 18 beats more but 8 false (a second lead's artefact
spike or step where the first lead is flat, its bumps under the first lead's T wave), and in atrial fibrillation a
stretch of twice the median interval is common and there the second lead's extra QRS were noise (MIT-BIH 203: 15 of
17 false with no floor in seconds and no likeness test; chosen on DS1 and the SVDB development half).  The windows the
likeness test (and :meth:`LeadAgreement.p_waves`) reads are taken when a confirmed QRS's window beat comes: a QRS is
judged once the first lead has passed it by ``lag_s``, which the callers tell before the second lead's samples of the
same chunk, and its window beat comes with those or a chunk later (before session 57 the window was looked for only
at the judgement: 55 of MIT-BIH 203's 2,903 confirmed V1 QRS gave a template).

Where the second lead cannot judge (not reliable: noise or motion on both leads at once), the rhythm does
(``split``, session 56): a noisy beat of the first lead that the second lead does not show (no QRS of it within
``tolerance_s``) is dropped where it splits one interval of a regular rhythm in two: the last beat that left before it
and the first lead's next QRS after it each less than ``split_part`` (0.8) of the median interval between clean beats
from it and at most ``split_sum`` (1.2) of that median apart.  It is the other side of Pan and Tompkins' search-back,
which looks for a beat missed where an interval grows to 1.66 times the mean: a beat found where two intervals add up
to about one is the one too many.  Limits, each from a reviewer's records (helpers 116 and 117, session 56, NSTDB
electrode motion and synthetic muscle noise on both leads; the first form had none of them and dropped true beats):

- only in a regular rhythm (of the clean intervals known, ``clean_rr`` at most and ``split_min_rr``, 8, at least,
  ``split_regular_share``, 3/4, within ``split_regular``, 15 %, of their median): in atrial fibrillation two short
  intervals are common;
- not where the beat comes a median interval (within ``split_phase``, 20 %) after the beat before the last one while
  the last one does not: there the last beat was the noise that got through, and this one goes on with the rhythm
  (MIT-BIH 108 with 6 dB of motion lost 5 true beats so);
- not where the first lead's own last 4 intervals between its QRS, noise and all, are regular among themselves (3 of
  4 within 15 % of their median) at under ``split_part`` of the clean median: a rhythm that has become faster (a
  tachycardia's onset in noise; the clean median is from before it), not noise splitting the old one (an SVT at twice
  the rate under a useless second lead lost every other beat for 5.6 s; now one);
- not while the second lead is off (flat or lost): it cannot fail to show a beat.

A noisy beat that comes early and is followed by a compensatory pause (a premature complex: the two intervals add up
to about two), and every clean beat are kept.  "Shown" is any QRS the second lead's detector found within
``tolerance_s``, its own noise too: a noise beat there keeps a noise beat here (MIT-BIH 108 at 1742.4 s).  The clean
median is the rhythm's before the noise and does not age through a long noisy stretch.  Lost: an interpolated
premature beat in noise that the second lead does not show, a noisy premature beat whose pause holds a noise
detection, a true beat where the noise beats that got through around it make the split, and beats of a rate that
rises gradually under the noise (eight DS1 records with motion and muscle noise on both leads at 3 dB: 9 true beats
lost for 233 false removed, at 0 dB 34 for 281; a synthetic sinus rate's rise at 0 dB, 11; docs/recordings.md).
It waits, only where the beat before it is that near, until the first lead has come ``split_sum`` median intervals and
``lag_s`` past it (at most ``wait_s``).
MIT-BIH 108 at 1653-1745 s, electrode motion and muscle noise on both leads: 3 false beats go, none true
(``tests/data/mitdb-noise``).  The limits are round numbers, not fitted.

Every QRS counts with the sample at which its detector decided it (``Segmenter.found_when``): a QRS of one lead
confirms one of the other only if it was decided within ``lag_s`` (0.75 s) of signal after it, and the second lead's
reliability at a beat is judged on its QRS at least ``lag_s`` before the beat, so the beats kept do not depend on the
chunks either lead came in (a monitor's joined chunks, a device's packets, evaluate's 0.25 s).

Latency: a noisy beat waits until ``lag_s`` of the second lead's signal after it has come (about 0.35 s more than
the beat itself needed), or until the second lead is off or lost (the monitor says so within a chunk), or, a safety
net, ``wait_s`` (10 s) of the first lead's signal, whichever is first; one the second lead does not show, less than
``split_part`` of the median interval after the beat before it, waits for the interval rule (``split_sum`` median
intervals and ``lag_s`` of the first lead's signal after it, about 1.7 s at 75 bpm); a beat after a candidate the
first lead passed over, where the second lead's QRS could become a beat (it is reliable, a median interval is known,
the candidate does not recur), waits until the second lead has come ``tolerance_s`` and ``lag_s`` past that candidate;
beats behind a waiting beat wait with it (beats leave in order). A bed with one lead is not touched.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np

from ecgmon.core.messages import Beat
from ecgmon.segmentation.represent import QRS_POST_S, QRS_PRE_S, Representation

# confirmed QRS windows kept, as a multiple of AgreementConfig.insert_templ (LeadAgreement._templates)
TEMPL_KEPT = 8


@dataclass(frozen=True, slots=True)
class AgreementConfig:
    tolerance_s: float = 0.15  # a QRS of each lead this close is the same QRS (EC57's match window)
    last: int = 20  # the second lead's last QRS its reliability is judged on
    precision: float = 0.9  # of those, the share the first lead confirmed: the second lead is reliable
    lag_s: float = 0.75  # a QRS confirms one of the other lead if decided within this much signal after it
    fresh_s: float = 3.0  # the second lead's newest QRS judged must lie within this long before a beat (it still sees)
    rate_ratio: float = 1.8  # the second lead's median RR at most this times the first lead's (between clean beats)
    max_rr_s: float = 2.5  # a longer interval between beats that left is a gap, not one of the rhythm's
    clean_rr: int = 64  # the first lead's last intervals between clean beats, its rhythm for the rate check
    wait_s: float = 10.0  # the longest a beat waits for a second lead that is not off (of the first lead's signal)
    insert: bool = True  # the second lead's QRS where the first lead showed none are beats (the class docstring)
    insert_gap: float = 2.0  # ... in a stretch without a first-lead QRS this many times the median clean interval
    insert_gap_s: float = 2.0  # ... and at least this long (s)
    insert_space: float = 0.3  # ... at least this many median intervals from the beats beside it
    insert_like: float = 0.8  # ... its window correlating at least this with the second lead's QRS the first confirmed
    insert_amp: float = 2.0  # ... its peak-to-peak within this factor of theirs
    insert_templ: int = 16  # ... like one of their last this many, at least half of them known
    p_amp: float = 0.5  # a second lead's "QRS" unlike its QRS and under this share of their peak-to-peak: a P wave
    p_slope: float = 0.27  # ... and its steepest 10 ms under this share of the least steep one's (P waves are dull)
    insert_lag_s: float = 2.5  # ... decided once the first lead has gone this far past it without a QRS near it (s)
    # ... or, in a shorter stretch, where the first lead's detector passed over a candidate within tolerance_s of it
    insert_passed: bool = True
    # ... not one that recurs: a candidate passed over at the same delay (within passed_recur_s) after at least
    # passed_recur of the first lead's passed_recur_beats QRS before is the lead's T wave (or another wave of each beat)
    passed_recur_beats: int = 8
    passed_recur: int = 3
    passed_recur_s: float = 0.04
    split: bool = True  # a noisy beat the second lead does not show, splitting one interval of the rhythm, is noise
    split_part: float = 0.8  # ... each part under this share of the median clean interval
    split_sum: float = 1.2  # ... and the two together at most this share of it
    split_min_rr: int = 8  # ... with at least this many clean intervals known
    split_regular: float = 0.15  # ... in a regular rhythm: of the clean intervals known (clean_rr at most), at least
    split_regular_share: float = 0.75  # this share within split_regular of their median
    split_phase: float = 0.2  # ... and not one a median interval (within this share) after the beat before the last


class LeadAgreement:
    """Per bed: the first lead's beats, the QRS both leads decided, and which beats leave.

    ``first(fids, whens, position)``: the first lead's QRS fiducials decided since the last call (absolute sample
    indices, float), the samples at which each was decided, and the lead's position (its next sample);
    ``second(..., beats=)`` the same for the second lead, with its window beats (absolute ``index``: the beats a QRS
    of it becomes where the first lead showed none); ``push(beats, second_alive=)``: the first lead's new beats
    (increasing ``index``: window beats, whose index is the QRS fiducial) and whether the second lead is still coming
    (False: off or lost, nothing waits for it): the beats that leave now, in order, the second lead's among them
    (``Beat.lead`` 1); ``flush()``: every waiting beat (the stream ended), kept.  ``dropped``: beats dropped so far;
    ``inserted``: the second lead's beats that left."""

    def __init__(self, fs: float, cfg: AgreementConfig = AgreementConfig(),
                 rep: Representation = Representation()) -> None:
        self.fs, self.cfg, self.rep = fs, cfg, rep
        self.tol, self.lag = cfg.tolerance_s * fs, cfg.lag_s * fs
        self.post = round(rep.post_s * fs)  # a window beat's samples after its QRS
        self._first: deque[tuple[float, float]] = deque(maxlen=4096)  # the first lead's recent (fiducial, decided)
        self._passed: deque[float] = deque(maxlen=4096)  # the first lead's candidates its detector passed over
        self._second: deque[tuple[float, float]] = deque(maxlen=4096)  # the second lead's
        self._unjudged = 0  # the second lead's last QRS not judged yet (the end of _second)
        self._judged: deque[tuple[float, bool]] = deque(maxlen=8 * cfg.last)  # (fiducial, confirmed by the first)
        self._kept: int | None = None  # the last beat that left
        self._kept_prev: int | None = None  # ... and the one before it
        self._kept_clean = False  # ... and whether its stretch was clean
        self._gap = False  # beats were dropped since it
        # the intervals between consecutive beats that left, both clean (samples): the first lead's rhythm as it was
        # where it could be read (not the intervals noise beats that got through split: those made a clean second
        # lead look like one that shows every other QRS, and kept it out for the whole noise episode: a newcomer)
        self._rr: deque[int] = deque(maxlen=cfg.clean_rr)
        self._first_at = self._second_at = -np.inf  # each lead's position
        self._waiting: deque[Beat] = deque()
        self.dropped = 0
        # cross-lead search-back (insert): the second lead's window beats (absolute index, the beat as its lead's
        # segmenter cut it); its QRS at or before _ins_after are no candidates any more (the same QRS as a beat that
        # left, or judged); the last first-lead beat that left
        self._second_beats: deque[tuple[int, Beat, float]] = deque(maxlen=256)
        # its QRS windows the first lead confirmed, each with its fiducial, peak-to-peak and steepest step in the
        # signal's units (_ptp, _steepest); more than insert_templ kept, since a judgement takes the last ones before
        # the sample it judges (_templates), and the agreement may have come further (a round of joined chunks)
        self._templ: deque[tuple[float, np.ndarray, float, float]] = deque(maxlen=TEMPL_KEPT * cfg.insert_templ)
        # ... the QRS confirmed whose window beat has not come yet (most are judged before it comes: the first lead's
        # samples of a chunk are told before the second lead's, and a window needs the samples after its QRS)
        self._await: deque[float] = deque(maxlen=4096)
        self._ins_after = -np.inf
        # the sample up to which the bed's alarms have been judged (Monitor._release_lead): the second lead's window
        # beats after it less wait_s are kept for p_waves (its last 256 at most)
        self.judged_at = -math.inf
        self._kept1: int | None = None
        self.inserted = 0

    def first(self, fids: Iterable[float], whens: Iterable[float], position: float,
              passed: Iterable[float] = ()) -> None:
        self._first.extend(zip(fids, whens, strict=True))
        for c in passed:  # (in order: a detector that learns its levels again decides earlier candidates again)
            if self._passed and c < self._passed[-1]:
                if len(self._passed) == self._passed.maxlen:
                    self._passed.popleft()
                bisect.insort(self._passed, c)
            else:
                self._passed.append(c)
        self._first_at = max(self._first_at, position)
        self._judge()

    def second(self, fids: Iterable[float], whens: Iterable[float], position: float,
               beats: Iterable[Beat] = (), offset: int = 0) -> None:
        new = list(zip(fids, whens, strict=True))
        self._second.extend(new)
        # (kept with their absolute index beside them: a beat is copied only where it becomes the bed's; and the
        # sample from which it is known whatever the packets: its QRS decided and its window's samples there)
        for b in beats:
            i = b.index + offset
            k = bisect.bisect_left(self._second, float(i - 1), key=lambda q: q[0])
            when = self._second[k][1] if k < len(self._second) and self._second[k][0] <= i + 1 else i
            self._second_beats.append((i, b, max(when, i + self.post)))
        self._unjudged = min(self._unjudged + len(new), len(self._second))
        self._second_at = max(self._second_at, position)
        self._judge()

    def _judge(self) -> None:
        # the second lead's QRS that the first lead has passed by lag_s: confirmed by the first lead or not
        while self._unjudged and self._second[-self._unjudged][0] + self.lag <= self._first_at:
            f = self._second[-self._unjudged][0]
            ok = _confirms(self._first, f, self.tol, self.lag)
            self._judged.append((f, ok))
            self._unjudged -= 1
            if ok and self.cfg.insert:  # a QRS both leads showed: the second lead's complex as it looks
                self._await.append(f)
        self._take_templates()
        # what neither a judgement nor a beat still to leave can need any more: every beat to come lies after the last
        # one that left, however far the leads' chunks have brought them past it (a 12 s chunk pushed its first
        # seconds' beats after their second-lead QRS were gone: NSTDB 118e06 lost 69 true beats as unconfirmed noise,
        # 228 with 20 s chunks; session 56)
        kept = -math.inf if self._kept is None else self._kept
        upto = min(self._first_at, self._second_at, kept) - self.lag - self.tol - self.cfg.wait_s * self.fs
        while self._first and self._first[0][0] < upto:
            self._first.popleft()
        while self._passed and self._passed[0] < upto:
            self._passed.popleft()
        while len(self._second) > self._unjudged and self._second[0][0] < upto:
            self._second.popleft()
        # (and its window beats only up to where the bed's alarms have been judged: p_waves asks of them there, which
        # may lag this agreement by a round of joined chunks, 20 s or more; CinC 2015 a345l with 253 other records
        # in 4 s packets: its standstill's P waves gone before they were judged, its asystole 1.8 s late)
        upto = min(upto, self.judged_at - self.cfg.wait_s * self.fs)
        while self._second_beats and self._second_beats[0][0] < upto:
            self._second_beats.popleft()

    def reliable(self, at: float) -> bool:
        """Whether the second lead can judge a beat at sample ``at``, from what both leads showed ``lag_s`` or more
        before it: of its last ``last`` QRS at least ``precision`` were found by the first lead too (it is not in noise
        itself), the newest of them within ``fresh_s`` (it still sees the heart: not a lead gone quiet without going
        flat), and their median interval at most ``rate_ratio`` times the first lead's median interval between clean
        beats (its last ``clean_rr``: it sees every beat, not a lead that shows every other QRS, or whose smaller
        complexes fall under its detector's reach)."""
        upto = at - self.lag
        last = _last(self._judged, upto, self.cfg.last)
        if (not last or last[-1][0] < upto - self.cfg.fresh_s * self.fs
                or sum(ok for _, ok in last) < self.cfg.precision * len(last) or len(self._rr) < len(last) // 2):
            return False
        return float(np.median(np.diff([f for f, _ in last]))) <= self.cfg.rate_ratio * float(np.median(self._rr))

    def push(self, beats: Iterable[Beat], *, second_alive: bool = True) -> list[Beat]:
        self._waiting.extend(beats)
        out: list[Beat] = []
        while True:
            head = self._waiting[0] if self._waiting else None
            # (a beat of the first lead waits for the second lead's at most wait_s, as a noisy one does)
            can_wait = second_alive and (head is None or head.index + self.cfg.wait_s * self.fs > self._first_at)
            got = self._insertion(head, can_wait) if self.cfg.insert else None
            if got == "wait":
                break
            if isinstance(got, Beat):
                self._gap = True  # its interval from the beat before it, and the next beat's from it
                out.append(self._leave(got))
                self._gap = True
                self.inserted += 1
                continue
            if head is None:
                break
            b = head
            if (self.cfg.insert and can_wait and b.index + self.lag > self._second_at and self._may_insert(b.index)):
                break  # after a long stretch without a QRS: the second lead's QRS in it first
            if self.cfg.insert and self.cfg.insert_passed and can_wait and self._passed_open(b.index):
                break  # the second lead's QRS at a candidate the first lead passed over first
            if b.noisy and b.index + self.lag > self._second_at:  # the second lead has not come that far yet
                if can_wait:
                    break  # wait for it
            elif b.noisy and not _confirms(self._second, b.index, self.tol, self.lag):
                # the second lead shows no QRS there: dropped where it is reliable, else where the beat splits an
                # interval of a regular rhythm (split)
                drop = self.reliable(b.index)
                if not drop and second_alive and (med := self._near(b)) is not None:
                    split = self._splits(b, med)
                    if split is None and can_wait:
                        break  # wait for the first lead's next QRS
                    drop = bool(split)
                if drop:
                    self._waiting.popleft()
                    self.dropped += 1
                    self._gap = True
                    continue
            out.append(self._leave(self._waiting.popleft()))
        return out

    def _near(self, b: Beat) -> float | None:
        """The median interval between clean beats where beat ``b`` may be judged by :meth:`_splits` (``split`` on),
        else None: ``b`` comes less than ``split_part`` of it after the last beat that left, in a regular rhythm (of the
        clean intervals known, ``clean_rr`` at most and ``split_min_rr`` at least: :meth:`_regular_median`), not in a
        faster rhythm (:meth:`_faster`), and not a median interval (within ``split_phase`` of it) after the beat before
        the last one while the last one is not."""
        c = self.cfg
        if not c.split or self._kept is None or len(self._rr) < c.split_min_rr:
            return None
        med = self._regular_median(np.asarray(self._rr, dtype=float))
        # (irregular: atrial fibrillation, where two short intervals are common)
        if med is None or b.index - self._kept >= c.split_part * med or self._faster(b, med):
            return None
        if self._kept_prev is not None:  # the last beat is the odd one out, this one goes on with the rhythm
            on = abs(b.index - self._kept_prev - med) <= c.split_phase * med
            if on and abs(self._kept - self._kept_prev - med) > c.split_phase * med:
                return None
        return med

    def _regular_median(self, rr: np.ndarray) -> float | None:
        """The median of intervals ``rr`` where they are regular (``split_regular_share`` of them within
        ``split_regular`` of it), else None."""
        c = self.cfg
        med = float(np.median(rr))
        return med if np.mean(np.abs(rr - med) <= c.split_regular * med) >= c.split_regular_share else None

    def _faster(self, b: Beat, med: float) -> bool:
        """Whether the first lead's last ``split_min_rr // 2`` (4) intervals between its QRS up to beat ``b`` (all it
        found, noise and all) are regular among themselves (:meth:`_regular_median`) at under ``split_part`` of the
        clean median ``med``: a faster rhythm, not noise between the beats of the old."""
        n = self.cfg.split_min_rr // 2
        k = bisect.bisect_right(self._first, b.index + self.tol, key=lambda q: q[0])
        if k < n + 1:
            return False
        now = self._regular_median(np.diff([q[0] for q in itertools.islice(self._first, k - n - 1, k)]))
        return now is not None and now < self.cfg.split_part * med

    def _splits(self, b: Beat, med: float) -> bool | None:
        """Whether beat ``b`` (:meth:`_near` the last beat that left; ``med`` the median interval between clean beats)
        splits one interval of the rhythm in two: the first lead's next QRS after it less than ``split_part`` of ``med``
        after it, and at most ``split_sum`` of ``med`` after the last beat that left.  None: not known yet (the first
        lead has not come ``split_sum`` median intervals and ``lag_s`` past it)."""
        c = self.cfg
        horizon = b.index + c.split_sum * med + self.lag
        if self._first_at < horizon:
            return None
        assert self._kept is not None
        k = bisect.bisect_right(self._first, b.index + self.tol, key=lambda q: q[0])
        nxt = next((f for f, when in itertools.islice(self._first, k, None) if when <= horizon), None)
        return nxt is not None and nxt - b.index < c.split_part * med and nxt - self._kept <= c.split_sum * med

    def _median_rr(self) -> float | None:
        return float(np.median(self._rr)) if len(self._rr) >= 4 else None

    def _gap_floor(self, med: float) -> float:
        c = self.cfg
        return max(c.insert_gap * med, c.insert_gap_s * self.fs)

    def _may_insert(self, upto: float) -> bool:
        """Whether the first lead's stretch without a QRS from its last beat that left to ``upto`` is long enough for
        the second lead's QRS in it to be beats, the second lead reliable at its start (:meth:`push` waits for them)."""
        med = self._median_rr()
        return (self._kept1 is not None and med is not None and upto - self._kept1 >= self._gap_floor(med)
                and self.reliable(self._kept1))

    def _insertion(self, head: Beat | None, can_wait: bool) -> Beat | str | None:
        """The second lead's next QRS before ``head`` (the first lead's next beat to leave), judged: its beat (to
        leave now), ``"wait"`` (not decidable yet), or None (no candidate before ``head``).  Candidates judged no beat
        are passed over for good.  ``can_wait``: False where nothing may wait for the second lead any more."""
        tol = self.tol
        while True:
            k = bisect.bisect_right(self._second, self._ins_after, key=lambda q: q[0])
            if k >= len(self._second):
                return None
            q = self._second[k][0]
            if head is not None and q >= head.index - tol:
                return None  # the head first (the same QRS, or one after it)
            if _near(self._first, q, tol):
                self._ins_after = q  # the first lead has this QRS
                continue
            j = bisect.bisect_right(self._first, q + tol, key=lambda f: f[0])
            nxt = self._first[j][0] if j < len(self._first) else None  # the first lead's next QRS after it
            if nxt is None and self._first_at < q + self.cfg.insert_lag_s * self.fs:
                return "wait"  # the first lead may still decide a QRS here
            med = self._median_rr()
            if med is None or self._kept1 is None or self._kept is None:
                self._ins_after = q
                continue
            end = nxt if nxt is not None else max(q, self._first_at - self.cfg.insert_lag_s * self.fs)
            if end - self._kept1 < self._gap_floor(med) and not (nxt is not None and self._passed_near(q)):
                if nxt is None:
                    return "wait"  # the stretch may grow long enough
                self._ins_after = q
                continue
            space = self.cfg.insert_space * med
            if q - self._kept < space or (nxt is not None and nxt - q < space) or not self.reliable(self._kept1):
                self._ins_after = q
                continue
            ib = self._second_beat(q)
            if ib is None:
                if can_wait and self._second_at < q + max(1.0 * self.fs, self.lag):
                    return "wait"  # its window is not cut yet
                self._ins_after = q
                continue
            self._ins_after = q
            i, b2 = ib
            if b2.noisy or not self._like(b2, i):  # in noise on the second lead too, or no QRS as it shows them
                continue
            return replace(b2, index=i, noisy=True, lead=1)

    def _passed_near(self, q: float) -> bool:
        """Whether the first lead's detector passed over a candidate within ``tolerance_s`` of sample ``q`` that does
        not recur (:meth:`_recurs`)."""
        if not self.cfg.insert_passed:
            return False
        k = bisect.bisect_left(self._passed, q - self.tol)
        return any(not self._recurs(c) for c in itertools.takewhile(lambda c: c <= q + self.tol,
                                                                     itertools.islice(self._passed, k, None)))

    def _recurs(self, c: float) -> bool:
        """Whether the first lead's passed-over candidate ``c`` recurs: one lies at the same delay (within
        ``passed_recur_s``) after at least ``passed_recur`` of the ``passed_recur_beats`` QRS of the first lead before
        the QRS that ``c`` follows.  A wave of every beat (a tall T wave) does; a premature beat the lead missed seldom
        does (a reviewer's synthetic first leads whose T waves, 0.9 of the R, were passed over at every beat: a second
        lead's QRS-like artefact there became a beat, 672 false beats in 48 records, without this)."""
        cfg = self.cfg
        j = bisect.bisect_left(self._first, c, key=lambda q: q[0]) - 1
        if j < 1:
            return False
        d, w = c - self._first[j][0], cfg.passed_recur_s * self.fs
        hits = sum(_near(self._passed, self._first[i][0] + d, w)
                   for i in range(max(0, j - cfg.passed_recur_beats), j))
        return hits >= cfg.passed_recur

    def _passed_open(self, upto: float) -> bool:
        """Whether the first lead's detector passed over a candidate after its last beat that left and before sample
        ``upto`` (less ``tolerance_s``) that the second lead may still show a QRS at (it has not come ``tolerance_s``
        and ``lag_s`` past it), where a QRS there could be inserted at all: the second lead reliable at the last beat,
        a median interval known, the candidate not recurring."""
        if self._kept1 is None or self._median_rr() is None:
            return False
        k = bisect.bisect_right(self._passed, self._kept1 + self.tol)
        open_ = [c for c in itertools.islice(self._passed, k, None)
                 if c < upto - self.tol and c + self.tol + self.lag > self._second_at]
        return bool(open_) and self.reliable(self._kept1) and any(not self._recurs(c) for c in open_)

    def p_waves(self, lo: float, hi: float) -> bool:
        """Whether the second lead's "QRS" after sample ``lo`` up to ``hi`` (those whose windows are cut; one at least)
        are all P waves, as far as their windows tell: each correlating under ``insert_like`` with every one of the
        second lead's last ``insert_templ`` QRS windows the first lead confirmed (at least half of them known: a
        standstill in a bed's first seconds, a reviewer's, session 49), and under ``p_amp`` (half) of the smallest
        one's peak-to-peak, and their median steepest change over 10 ms (:func:`_steepest`) under ``p_slope`` (0.27)
        of the least steep one's.  A QRS of another shape (a bundle branch block, an escape rhythm, a flipped axis: a
        reviewer, session 49, false asystole on each with a likeness test alone) is as large as a QRS, or, shrunk with
        it, still steep (lead II falling to a fiftieth while lead V's QRS turn inverted, axis-shifted or
        right-bundle-branch-blocked at 0.3-0.45 of their size: a reviewer, session 50, a false asystole of 2-10 s, held
        to the record's end once sizes were judged in millivolts; their steepness 0.30-0.56 of the QRS', a
        standstill's 0.3-0.4 mV P waves 0.18-0.31, median at most 0.25, in synthetic records: P waves have about a
        tenth of a QRS's slope energy, segmentation.peaks).  One of the same shape smaller is like them.  False where
        it cannot tell: no window, too few confirmed, or a window in noise."""
        c = self.cfg
        templ = self._known_templates(lo)
        got = self._silence(lo, hi)
        if templ is None or not got or any(b.noisy for b in got):
            return False
        small = c.p_amp * min(a for _, a, _ in templ)
        if float(np.median([_steepest(b, self.rep) for b in got])) >= c.p_slope * min(s for _, _, s in templ):
            return False  # (the median: a step of noise on one dull wave would clear a standstill's alarm)
        return all(_ptp(b) < small for b in got) and all(self._unlike(b, templ) for b in got)

    def unlike_qrs(self, lo: float, hi: float) -> bool:
        """Whether the second lead's "QRS" after sample ``lo`` up to ``hi`` (those whose windows are cut; one at least)
        are all unlike its QRS: each correlating under ``insert_like`` with every one of the second lead's last
        ``insert_templ`` QRS windows the first lead confirmed (at least half of them known), whatever their size and
        noise rating (:meth:`p_waves` asks that and more).  False where it cannot tell."""
        templ = self._known_templates(lo)
        got = self._silence(lo, hi)
        return templ is not None and bool(got) and all(self._unlike(b, templ) for b in got)

    def _silence(self, lo: float, hi: float) -> list[Beat]:
        """The second lead's window beats of its QRS after sample ``lo`` up to ``hi``, those known by ``hi`` (a
        judgement at ``hi`` does not see a window the packets happened to bring sooner)."""
        k = bisect.bisect_right(self._second_beats, lo, key=lambda ib: ib[0])
        return [b for i, b, known in itertools.islice(self._second_beats, k, None) if i <= hi and known <= hi]

    def _unlike(self, b: Beat, templ: list[tuple[np.ndarray, float, float]]) -> bool:
        """Whether window beat ``b`` correlates under ``insert_like`` with every template of ``templ``."""
        w = _wave(b)
        return not any(self._correlates(w, t) for t, _, _ in templ)

    def _correlates(self, w: np.ndarray, t: np.ndarray) -> bool:
        """Whether window wave ``w`` correlates at least ``insert_like`` with template wave ``t`` (False where the
        correlation is not defined: a flat window)."""
        r = np.corrcoef(w, t)[0, 1]
        return bool(np.isfinite(r) and r >= self.cfg.insert_like)

    def _take_templates(self) -> None:
        """The QRS both leads showed whose second-lead window beat has come, in order: templates where it is clean
        (:meth:`_like`, :meth:`p_waves`).  One whose beat never comes (a later beat has) is passed over."""
        while self._await:
            f = self._await[0]
            ib = self._second_beat(f)
            if ib is None:
                if not self._second_beats or self._second_beats[-1][0] <= f + 1:
                    return  # its beat may still come
                self._await.popleft()
                continue
            self._await.popleft()
            if not ib[1].noisy:
                self._templ.append((f, _wave(ib[1]), _ptp(ib[1]), _steepest(ib[1], self.rep)))

    def _second_beat(self, at: float) -> tuple[int, Beat] | None:
        """The second lead's window beat of its QRS at ``at`` with its absolute index (the fiducial rounded), or
        None."""
        k = bisect.bisect_left(self._second_beats, at - 1, key=lambda ib: ib[0])
        if k < len(self._second_beats) and self._second_beats[k][0] <= at + 1:
            i, b, _ = self._second_beats[k]
            return i, b
        return None

    def _templates(self, before: float) -> list[tuple[np.ndarray, float, float]]:
        """The last ``insert_templ`` confirmed QRS windows of the second lead (wave, peak-to-peak, steepness) whose
        QRS came before sample ``before``: a judgement of the signal there does not depend on how far past it the
        agreement has been told (the size of a round of joined chunks: CinC 2015 a345l's asystole came 1.8 s later
        played with 253 other records in 4 s packets than alone, its second lead's "QRS" judged against QRS
        confirmed after its standstill)."""
        k = bisect.bisect_left(self._templ, before, key=lambda e: e[0])
        return [(w, a, st) for _, w, a, st in itertools.islice(self._templ, max(0, k - self.cfg.insert_templ), k)]

    def _known_templates(self, before: float) -> list[tuple[np.ndarray, float, float]] | None:
        """:meth:`_templates` before sample ``before`` where at least half of ``insert_templ`` are known, else None
        (too few to judge a likeness by)."""
        templ = self._templates(before)
        return templ if len(templ) >= max(1, self.cfg.insert_templ // 2) else None

    def _like(self, b: Beat, at: float) -> bool:
        """Whether ``b``'s window (its QRS at absolute sample ``at``) is a QRS as the second lead shows them where the
        first lead confirmed them: its correlation with one of their last ``insert_templ`` windows before it (at least
        half of them known) at least ``insert_like``, its peak-to-peak within ``insert_amp`` of that one's (a P wave in
        a pause, an atrial fibrillation's f wave, a tap, noise or a fibrillatory wave is none; nor is a ventricular
        complex unlike the bed's, which is left out)."""
        c = self.cfg
        templ = self._known_templates(at)
        if templ is None:
            return False
        # (sizes as the windows show them, relative to the lead's running amplitude: its QRS may grow or shrink over
        # the minutes the first lead is lost, a reviewer, session 50)
        w = _wave(b)
        a = float(np.ptp(w))
        for t, _, _ in templ:  # like one of them (a bed's premature ventricular complexes both leads showed too)
            m = float(np.ptp(t))
            if m > 0 and m / c.insert_amp <= a <= m * c.insert_amp and self._correlates(w, t):
                return True
        return False

    def _leave(self, b: Beat) -> Beat:
        """``b`` as it leaves: after dropped beats, its RR interval is the one from the last beat that left (the beat
        and the model's prematurity channel of a window beat, :meth:`Representation.prematurity` of its ratio to the
        median of the last intervals between clean beats that left), not the one from a beat that was noise."""
        if self._kept is not None:
            rr = b.index - self._kept
            if self._gap and self._rr:
                rr_s = rr / self.fs
                med = float(np.median(self._rr)) / self.fs
                b = replace(b, rr_prev_s=rr_s)
                if b.samples.ndim == 2 and b.samples.shape[0] == 2 and rr_s > 0 and med > 0:
                    x = b.samples.copy()
                    x[1] = self.rep.prematurity(rr_s / med)
                    b = replace(b, samples=x)
            if 0 < rr <= self.cfg.max_rr_s * self.fs and self._kept_clean and not b.noisy and not self._gap:
                self._rr.append(rr)
        self._kept_prev = self._kept
        self._kept, self._kept_clean, self._gap = b.index, not b.noisy, False
        if not b.lead:
            self._kept1 = b.index
            self._ins_after = max(self._ins_after, b.index + self.tol)  # (the same QRS on the second lead)
        return b

    def flush(self, *, end: bool = False) -> list[Beat]:
        """Every waiting beat, kept; with ``end`` (the stream has ended: neither lead decides any QRS more) the second
        lead's QRS among and after them judged for insertion too."""
        if end and self.cfg.insert:
            self._first_at = np.inf
            out = self.push((), second_alive=False)
            out += list(self._waiting)
        else:
            out = list(self._waiting)
        self._waiting.clear()
        return out


def _confirms(qrs: deque[tuple[float, float]], at: float, tol: float, lag: float) -> bool:
    """Whether ``qrs`` (increasing fiducials, each with its decision sample) hold one within ``tol`` of ``at`` that
    was decided by ``at + lag``."""
    k = bisect.bisect_left(qrs, at - tol, key=lambda q: q[0])
    while k < len(qrs) and qrs[k][0] <= at + tol:
        if qrs[k][1] <= at + lag:
            return True
        k += 1
    return False


def _wave(b: Beat) -> np.ndarray:
    """A window beat's wave channel (its samples where it has one channel)."""
    x = np.asarray(b.samples)
    return x[0] if x.ndim == 2 else x


def _ptp(b: Beat) -> float:
    """A window beat's peak-to-peak in the signal's units (its window times :attr:`Beat.scale`, the bed's amplitude it
    was divided by; the window's own where that is not known).  The windows of a lead are divided by the median
    peak-to-peak of its last 32 beats, so its P waves, counted as its QRS for 13 s of a standstill, grew to the
    size of its QRS before it: the first lead's asystole, the bed's while they were P waves, cleared mid-standstill
    (a 20 s standstill with 0.4 mV P waves, cleared after 9.7 s; session 50).  (The cross-lead search-back's likeness
    keeps the windows' own sizes: in millivolts, a lead V whose QRS grew 2.5 times over the minutes lead II was lost
    had none inserted from then on: a reviewer, session 50.)"""
    a = float(np.ptp(_wave(b)))
    return a * b.scale if b.scale > 0 else a


STEEP_S = 0.01  # the steepest change over this span (s): noise of a sample's step would stand out of a P wave's


def _steepest(b: Beat, rep: Representation) -> float:
    """A window beat's steepest change over ``STEEP_S`` (per window sample) within its QRS (``QRS_PRE_S`` before its
    fiducial to ``QRS_POST_S`` after it; a window starts at its fiducial and wraps round: ``WindowCutter.order``) in
    the signal's units (as :func:`_ptp`)."""
    w = _wave(b)
    dt = (rep.pre_s + rep.post_s) / len(w)
    qrs = np.concatenate([w[len(w) - math.ceil(QRS_PRE_S / dt):], w[:math.ceil(QRS_POST_S / dt) + 1]])
    span = max(1, round(STEEP_S / dt))
    s = float(np.abs(qrs[span:] - qrs[:-span]).max()) / span
    return s * b.scale if b.scale > 0 else s


def _near(qrs: deque[tuple[float, float]] | deque[float], at: float, tol: float) -> bool:
    """Whether ``qrs`` (increasing fiducials, each alone or with the sample it was decided at) hold one within ``tol``
    of ``at``, whenever it was decided."""
    k = bisect.bisect_left(qrs, at - tol, key=_fiducial)
    return k < len(qrs) and _fiducial(qrs[k]) <= at + tol


def _fiducial(q: tuple[float, float] | float) -> float:
    return q[0] if isinstance(q, tuple) else q


def _last(judged: deque[tuple[float, bool]], upto: float, n: int) -> list[tuple[float, bool]]:
    """The last ``n`` of ``judged`` (increasing samples) at or before ``upto``; none where there are fewer."""
    k = bisect.bisect_right(judged, upto, key=lambda j: j[0])
    return list(itertools.islice(judged, k - n, k)) if k >= n else []
