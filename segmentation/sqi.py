"""Signal-quality indices of one bed's ECG, per stretch and per beat: is this signal clean enough to judge beats?

Every ``step_s`` (2 s) the last ``window_s`` (10 s) of the raw signal are rated with three published indices
(Li Q, Mark RG, Clifford GD. Robust heart rate estimation from multiple asynchronous noisy sources using
signal quality indices and a Kalman filter. Physiol Meas 29(1):15-32, 2008; Clifford GD, Behar J, Li Q,
Rezek I. Signal quality indices and data fusion for determining clinical acceptability of
electrocardiograms. Physiol Meas 33(9):1419-1433, 2012):

- ``bsqi``: the agreement of two QRS detectors over the window, ``matched / (n1 + n2 - matched)`` with beats
  matched within 150 ms (Li et al. 2008).  Detector 1 is the monitor's own
  (:class:`~ecgmon.segmentation.peaks.QRSDetector`, an adaptive slope-energy detector after Pan-Tompkins and
  Hamilton); detector 2 is an independent curve-length detector after Zong et al.'s wqrs (Zong W, Moody GB,
  Jiang D. A robust open-source algorithm to detect onset and duration of QRS complexes. Computers in
  Cardiology 30:737-740, 2003): the length transform (sum of absolute slopes over 130 ms of the low-passed
  signal less its 100 ms moving mean, so that large slow waves do not take it over), its rising crossings of a
  third of the window's 98th percentile, 250 ms apart (less at rates over 190 bpm), T waves rejected as Pan &
  Tompkins do.  Different features and different thresholds fail differently under noise, so their
  disagreement measures it.  The window is scored ``lag_s`` (1 s) behind the newest sample, where the
  monitor's detector has decided its QRS (its look-ahead is 0.3 s);
- ``ksqi``: the kurtosis (Pearson's, 3 for Gaussian noise) of the window less its 200 ms moving mean (baseline
  wander and large slow T or ST waves out, which would make a clean ECG look Gaussian): a clean ECG is peaked
  (over 5, Clifford et al. 2012); electrode motion and muscle noise make it Gaussian-like;
- ``psqi``: the share of the 5-40 Hz power that lies at 5-15 Hz, where the QRS's power is (Clifford et al. 2012
  give 0.5-0.8 for a clean ECG); reported, not used in the verdict (on DS1 clean records range 0.45-0.99,
  and NSTDB's electrode motion barely moves it).

A stretch is *noisy* when ``bsqi < bsqi_min`` (0.8) or ``ksqi < ksqi_min`` (5), unless the noise has ended: a
noisy window whose last ``recent_s`` (2.5 s) are clean by a margin, rated alone by the same rules and every QRS in
them agreed by both detectors (``recent_bsqi``, 1.0), is clean (``Stretch.ended``).  A beat is noisy when the
stretch rated last before its QRS was decided is (the ratings are made at fixed points of the stream, whatever its
packets: :class:`SignalQuality`; that window ends 1-3 s before the QRS is decided, so a burst of
noise is seen about 1-3 s late and held for about 3-5 s after it; rated on whole windows alone, 10-13 s: 8 s of
broadband noise at a stream's start kept "ECG cannot be analysed" on until 21 s, and a 4 s burst mid-record raised
it 3 s after the burst and held it 14 s).  2.5 s, not 5, was chosen on such synthetic bursts (the helper's case
K01 variants: with 5 s the technical alarm still came 1-3 s after 2-6 s bursts had ended); on the development
records it changed little: MIT-BIH DS1 beats marked noisy 1.70 -> 1.41 %, its alarms the same but 3 LOW; CinC 2015
and VFDB development alarms the same; NSTDB 118 at 12 dB the beats marked in its noise segments 39.9 -> 29.9 % and
in its clean ones 1.1 -> 0.4 %, N flagged 2.09 -> 2.15 % (``evaluate --protocol mitdb``; the noise there comes in
bursts, and most of the beats between them are read as normal).
Kurtosis 5 is Clifford et al.'s level for a clean ECG; bSQI 0.8 means about one beat in five not agreed by
the two detectors (our choice, checked on DS1 below).

A fast regular rhythm is not noisy.  Over about 240 bpm (the monitor's detector's median RR in the window under
``fast_rr_s``, 0.25 s) detector 2's 130 ms length transform no longer falls below its threshold between complexes
(it found half of a clean 280 bpm rhythm's) and the kurtosis of an ECG falls with the share of the time its QRS
fill (4.8 for a clean narrow-complex rhythm at 280 bpm against over 15 at 75), so both indices called a clean
280-300 bpm rhythm noisy and the noise rule held its extreme tachycardia.  Such a stretch is clean when the
monitor's detector found at least ``fast_beats`` (8) QRS in it, regular (the coefficient of variation of their RR
under ``fast_cv``, 0.1: detections in noise and motion gave 0.4-0.6) and the kurtosis is still ``fast_ksqi`` (3.5)
or more (Gaussian noise is 3, a sinusoid such as a tremor or ventricular flutter 1.5).  Chosen on synthetic
rhythms (180-300 bpm, 128-1000 Hz) and the noise of case K01's kind; not measured on recorded 1:1 flutter.

An organised rhythm is not noisy either.  Kurtosis is a sinus-rhythm index: wide complexes fill much of each cycle,
so a clean regular wide-complex rhythm (ventricular tachycardia, a bundle-branch block at a fast rate) has a kurtosis
of 2.8-3.6 (synthetic wide-complex rhythms at 160-200 bpm), under the 5 of a clean ECG, and was rated noisy: its
extreme tachycardia was then held and its beats got no verdict (Behar J, Oster J, Li Q, Clifford GD, "ECG signal
quality during arrhythmia and its application to false alarm reduction", IEEE Trans Biomed Eng 60(6):1660-1666,
2013, found the same: indices fitted on sinus rhythm misjudge arrhythmias).  A stretch where the two independent
detectors agree (bSQI at least ``organised_bsqi``, 0.9) on at least ``fast_beats`` QRS (in a stream's first, shorter
windows as many in proportion, at least 4: session 26) of a rhythm regular in pieces (:func:`steady`: at most
``organised_changes``, 2, of its consecutive RR differ by more than ``fast_cv``; a rate step such as a VT's onset
after sinus rhythm is one or two, where the window's RR coefficient of variation, asked before session 27, called the
first 4 s of a regular VT noise and let its onset be called VF) no faster than ``organised_max_bpm`` (220; faster,
the fast-rhythm rule above, with its kurtosis floor, decides: tremor runs at 4-8 Hz) is clean.  Noise and motion do
not give two detectors a regular rhythm to agree on (their RR vary by 40-60 %).  On the development records it
changed only CinC 2015 t678s (a true extreme tachycardia at 150 bpm on a lead rated noisy throughout, now raised:
score 72.90 -> 74.18); MIT-BIH DS1, VFDB and NSTDB 118 (beats marked in its noise segments, alarms) gave the same
figures.  Since session 38 the detectors may also agree at a lag (:func:`lagged_bsqi`, ``organised_lagged``:
detector 2 locks on tall T waves 0.2-0.3 s after the QRS in some cycles and off them again, a plain bSQI of 0-0.7
over a regular 142 bpm rhythm): such a stretch had been rated noisy, its QRS with it, and the VF detector's windows
over the regular rhythm, which only an organised rhythm of clean QRS vetoes
(:meth:`~ecgmon.monitor.lethal.LethalWatch.organised`), raised VF/flutter (a newcomer's ecgsyn rhythm with T waves
1.7 times the R: 5-8 times in 90 s).  Tried in the same session and taken back after a reviewer's inputs: a rhythm
regular as a whole (the RR's coefficient of variation under ``fast_cv``, where fiducials that jitter on small
complexes change more than 2 consecutive RR by over 10 %: CinC 2015 a142s resampled to 100-1000 Hz raised a false
VF/flutter at 18-30 s because of it) took CPR-like compressions at 140-160 per minute, a few per cent irregular, for an
organised rhythm and vetoed the true VF under them (8 of 15 such inputs); and the kurtosis taken with 50/60 Hz notched
out (CinC 2015 t106s's true extreme tachycardia, missed under 0.5-1 mV of hum, was raised) rated electrode-motion noise
under hum clean, where the QRS detector's hum-driven detections then raised false extreme tachycardias.

A bigeminy whose two complexes differ is not noisy either (``patterned_slope``, session 57).  Detector 2's threshold
is a third of its window's 98th percentile: where one of the two complexes has under a third of the other's curve
length it finds only the larger, and the bSQI of a clean bigeminy is about 0.5 (EC13 figure 3a, ventricular bigeminy
with narrow and wide complexes: "ECG cannot be analysed" from 12 s to the end and no heart rate shown, a newcomer).
A window noisy by its bSQI alone (its kurtosis clean) is clean where detector 1's intervals are not regular
(:func:`steady`) but repeat every 2 or 3 beats (:func:`periodic`), every QRS of detector 2 is one of detector 1's,
the QRS it missed all lie at the same places in that pattern and are alike in steepness (their steepest raw slopes
within 40 ms, each within twice any other's), at least half as steep as the ones it found by their medians
(``patterned_slope``) and none over 4 times (``patterned_spike``), none a pulse (its steep part 2 samples and 6 ms at
most): QRS, not T waves (Pan and Tompkins' half; detector 1 taking dull T waves for beats makes the same pattern and
stays noisy, and so does a mixture of them and QRS) nor a pacemaker's atrial pulses counted as beats, and not
noise, which lifts detector 2's threshold over beats anywhere and makes a regular rhythm look so (a regular rhythm is
left to the rules above).  Left (a reviewer's synthetic records, session 57): noise of 12-3 dB on such a bigeminy
keeps its windows clean where the kurtosis stays over 5
(detector 1 found no false beat there, but the beats in the noise get verdicts), and narrow T waves (20-30 ms wide)
that both detectors count can pass.  On the development records (measured on the rule's first form, which only the
conditions on steepness and pulses have narrowed since) it changed no rating in noise (NSTDB 118 at every
SNR, CinC 2015, SVDB: no beat's rating; MIT-BIH DS1: one window of a clean bigeminy, 207 at 207-217 s; VFDB: one
window, no beat), and ``evaluate --protocol cinc2015|vfdb|mitdb`` gave the same figures.

A stream's first rating comes once ``first_window_s`` (5 s) has arrived (plus the lag), on those seconds; until its
window is full each rating takes the last ``first_window_s`` (a recording or a device that starts in motion
artefact is rated noisy from about 6 s, not from 11 s: 8 s of noise at the start raised a false extreme
tachycardia on its "beats" before).  Nothing is noisy before that (the lethal watch counts no fast rate before a
first rating: :meth:`LethalWatch.qrs`'s ``rated``).

Cost: one buffer append per push; the indices every ``step_s`` on ``window_s`` of samples (moving means,
a percentile and an FFT, vectorised): 0.4 ms per rating at 128 Hz, 0.7 ms at 360 Hz, measured on the shared
2-core machine under a load of about 7 (other helpers' evaluations), so 0.2-0.35 ms per bed per second of
signal; the Segmenter of one 360 Hz record took 35-60 % longer with it in the same conditions.  Detector 2's
threshold (a third, with its T-wave rule) and the two moving means were chosen on development records
(MIT-BIH DS1 and SVDB development records: without the moving means, SVDB 801, a clean record with large
slow waves that the monitor's detector gets 100 % right, was rated noisy 78 % of the time; with them 7 %, and
DS1 1.3 % of 10 s windows, most in the noisy records 108 and 207); NSTDB 118 was only measured.
"""

from __future__ import annotations

import functools
import math
from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

__all__ = ["SQIConfig", "SignalQuality", "Stretch", "bsqi", "curve_length_qrs", "lagged_bsqi", "rate_many"]

THR_FRAC = 1 / 3  # detector 2's threshold: this share of the window's 98th percentile of the length transform


@dataclass(frozen=True, slots=True)
class SQIConfig:
    window_s: float = 10.0
    # until a stream has a full window: the first rating once this much has arrived (plus the lag), then every
    # step on its last first_window_s (a stream that starts in noise or motion is not "clean" for its first 10 s)
    first_window_s: float = 5.0
    step_s: float = 2.0
    lag_s: float = 1.0  # the window ends this long before the newest sample (the main detector's decisions)
    match_s: float = 0.15
    bsqi_min: float = 0.8
    ksqi_min: float = 5.0
    min_beats: int = 2  # a window with fewer beats from both detectors is rated by kurtosis alone
    length_hp_s: float = 0.1  # detector 2 works on the signal less its moving mean over this (slow waves out)
    kurtosis_hp_s: float = 0.2  # the kurtosis is taken of the signal less its moving mean over this
    # a fast regular rhythm (see the module docstring): detector 1's median RR under fast_rr_s, the coefficient of
    # variation of its RR under fast_cv, at least fast_beats of its QRS, and a kurtosis of fast_ksqi or more
    fast_rr_s: float = 0.25
    fast_cv: float = 0.1
    fast_beats: int = 8
    fast_ksqi: float = 3.5
    # an organised rhythm (module docstring): at least fast_beats QRS, regular (fast_cv), both detectors agreeing
    # (bSQI at least organised_bsqi), no faster than organised_max_bpm: clean whatever its kurtosis
    organised_bsqi: float = 0.9
    # ... regular in pieces: at most this many changes of more than fast_cv between consecutive RR (a rate step within
    # the window, e.g. VT's onset after sinus rhythm, with its first interval between the two rates)
    organised_changes: int = 2
    organised_max_bpm: float = 220.0
    # ... and the detectors may agree with detector 2 on another wave of some cycles (lagged_bsqi; session 38)
    organised_lagged: bool = True
    # ... or a bigeminal or trigeminal rhythm whose smaller complexes detector 2 does not reach (module docstring,
    # "A bigeminy"): detector 1's RR not regular but repeating every 2 or 3 beats (organised_changes off it at most),
    # every QRS of detector 2 one of detector 1's, the kurtosis clean, and those detector 2 missed at least
    # patterned_slope of the others' steepest slope by their medians, alike among themselves, none a pacemaker pulse
    # (QRS, not T waves: Pan & Tompkins' half); 0: off
    patterned_slope: float = 0.5
    patterned_spike: float = 4.0  # ... and at most this many times as steep (a pacemaker pulse is far steeper)
    # a noisy window whose last recent_s (rated alone) are clean is clean: the noise has ended (None: off)
    recent_s: float | None = 2.5
    recent_bsqi: float = 1.0  # ... clean by a margin: every QRS agreed by both detectors (bursty noise leaves gaps)


@dataclass(frozen=True, slots=True)
class Stretch:
    """The indices of one window ``[start, stop)`` (absolute sample indices)."""

    start: int
    stop: int
    bsqi: float | None  # None: fewer than ``min_beats`` beats from either detector
    ksqi: float
    psqi: float
    noisy: bool
    # the window's indices call it noisy but its last ``recent_s`` are clean (``noisy`` False): the noise has ended
    ended: bool = False


def _pairs(a: np.ndarray, b: np.ndarray, tol: float) -> list[tuple[int, int]]:
    """Indices (i, j) of one-to-one matches of two sorted arrays within ``tol`` (greedy in time order)."""
    al, bl = a.tolist(), b.tolist()  # Python floats: the same differences, without numpy's per-element cost
    na, nb = len(al), len(bl)
    i = j = 0
    out = []
    while i < na and j < nb:
        d = al[i] - bl[j]
        if abs(d) <= tol:
            out.append((i, j))
            i, j = i + 1, j + 1
        elif d < 0:
            i += 1
        else:
            j += 1
    return out


def _median(v: list[float]) -> float:
    """``float(np.median(v))`` of a short non-empty list of finite floats (the middle value, or the mean of the
    two middle values as numpy takes it: their sum halved)."""
    srt = sorted(v)
    q = len(srt)
    return srt[q // 2] if q % 2 else (srt[q // 2 - 1] + srt[q // 2]) / 2


def bsqi(a: np.ndarray, b: np.ndarray, tol: float, *, lo: float = -np.inf, hi: float = np.inf) -> float:
    """``matched / (n_a + n_b - matched)`` (Li et al. 2008): beats of two sorted index arrays matched one to one
    within ``tol`` samples, counted in ``[lo, hi)``; a beat of ``b`` just outside it counts when it is the match
    of one of ``a`` inside (and one inside does not when it matches one of ``a`` outside), so that a window's
    edges do not split pairs.  1.0 when neither has a beat."""
    pairs = _pairs(a, b, tol)
    in_a = ((a >= lo) & (a < hi)).tolist()
    in_b = ((b >= lo) & (b < hi)).tolist()
    for i, j in pairs:
        in_b[j] = in_a[i]
    m = sum(1 for i, _ in pairs if in_a[i])
    den = sum(in_a) + sum(in_b) - m
    return 1.0 if den == 0 else m / den


def lagged_bsqi(a: np.ndarray, b: np.ndarray, tol: float, *, lo: float = -np.inf, hi: float = np.inf) -> float:
    """:func:`bsqi` of ``a`` and ``b`` where a beat of ``b`` may mark another wave of its cycle at the usual offset:
    the median, over the beats of ``b`` more than ``tol`` from every beat of ``a``, of the distance from the beat of
    ``a`` before each; a beat of ``b`` that lies nearer a beat of ``a`` once moved back by that offset is moved (0.0
    when either has no beat).  Two detectors that find the same regular rhythm, one of them on another wave of some or
    all cycles (a curve-length detector that locks on tall T waves 0.2-0.3 s after each QRS, and off them again),
    agree on the rhythm though not on every fiducial: their plain bSQI is 0-0.7.  Noise and motion detections have no
    usual offset."""
    if not len(a) or not len(b):
        return 0.0

    def nearest(v: np.ndarray) -> np.ndarray:  # distance from each of v to the nearest beat of a
        j = np.searchsorted(a, v)
        return np.minimum(np.abs(v - a[np.maximum(j - 1, 0)]), np.abs(v - a[np.minimum(j, len(a) - 1)]))

    d = nearest(b)
    prev = np.searchsorted(a, b, side="right") - 1  # the beat of a at or before each beat of b
    off = (b - a[np.maximum(prev, 0)])[(d > tol) & (prev >= 0)]
    if not len(off):
        return bsqi(a, b, tol, lo=lo, hi=hi)
    moved = b - float(np.median(off))
    return bsqi(a, np.sort(np.where(nearest(moved) < d, moved, b)), tol, lo=lo, hi=hi)


@functools.lru_cache(maxsize=64)
def _mm_index(length: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_moving_mean`'s window bounds into the running sum, and their lengths (read-only, shared)."""
    i = np.arange(length)
    lo, hi = np.maximum(0, i - n // 2), np.minimum(length, i - n // 2 + n)
    den = (hi - lo).astype(np.float64)
    for a in (lo, hi, den):
        a.flags.writeable = False
    return lo, hi, den


def _moving_mean(x: np.ndarray, n: int) -> np.ndarray:
    """Centred moving mean over ``n`` samples (shorter at the ends)."""
    c = np.empty(len(x) + 1)
    c[0] = 0.0
    np.cumsum(x, out=c[1:])
    lo, hi, den = _mm_index(len(x), n)
    return (c.take(hi) - c.take(lo)) / den


def _percentile98(a: np.ndarray) -> float:
    """``np.percentile(a, 98)`` (its default, linear method) for a 1-D finite ``a``, the same value bit for bit
    (numpy's virtual index ``(n - 1) q``, its two neighbours by partition and its ``_lerp``), without numpy's
    per-call overhead (47 of the rating's ~400 us)."""
    n = len(a)
    v = (n - 1) * 0.98
    j = math.floor(v)
    g = v - j
    if j + 1 >= n:
        return float(np.partition(a, n - 1)[n - 1])
    part = np.partition(a, (j, j + 1))
    lo, hi = float(part[j]), float(part[j + 1])
    d = hi - lo
    return hi - d * (1.0 - g) if g >= 0.5 else lo + d * g


@functools.lru_cache(maxsize=16)
def _mains_lengths(fs: float) -> tuple[int, ...]:
    """Moving means (samples) that take the mains out of detector 2's signal: one period of 50 Hz and one of 60 Hz
    (nulls at them and their harmonics), where the mains lies under the Nyquist frequency.  The curve length of a
    QRS, a monotone rise and fall, is not changed by such smoothing; that of a hum is: 0.2 mV of 50 Hz on a clean
    250 Hz ECG (its 30 Hz low-pass passes a fifth of it) kept the length transform over its threshold between the
    QRS, detector 2 found one complex in 10 s, and the whole record was rated noisy, every beat without a verdict
    ("ECG cannot be analysed", a newcomer's test, session 26)."""
    return tuple(k for f in (50.0, 60.0) if fs > 2 * f and (k := round(fs / f)) >= 2)


def curve_length_qrs(x: np.ndarray, fs: float, *, frac: float = THR_FRAC, refractory_s: float = 0.25,
                     hp_s: float | None = None) -> np.ndarray:
    """QRS positions (sample indices into ``x``) by a curve-length detector after wqrs (Zong et al. 2003):
    the length transform (sum of absolute slopes) over 130 ms of the low-passed signal (a moving mean over
    ``fs / 30`` samples, first null at 30 Hz, then over one mains period of 50 and of 60 Hz,
    :func:`_mains_lengths`; less its moving mean over ``hp_s`` when given), its rising
    crossings of ``frac`` of its 98th percentile at least ``refractory_s`` apart (wqrs's eye-closing period,
    250 ms), each placed at the centre of its 130 ms window where the transform peaks within the next 200 ms;
    a crossing within 360 ms of the last whose peak is less than half of that one's is a T wave.  ``x``: 1-D
    finite samples, at least 0.5 s."""
    w = max(2, round(0.13 * fs))
    if len(x) < max(3 * w, round(0.5 * fs)):
        return np.zeros(0, dtype=np.int64)
    y = _moving_mean(x, max(1, round(fs / 30.0)))
    for k in _mains_lengths(fs):
        y = _moving_mean(y, k)
    if hp_s is not None:
        y = y - _moving_mean(x, max(2, round(hp_s * fs)))
    c = np.empty(len(y))
    c[0] = 0.0
    np.cumsum(np.abs(np.diff(y)), out=c[1:])
    length = np.zeros(len(c))
    length[w:] = c[w:] - c[:-w]  # sum of |slope| over the w samples before each sample
    thr = _percentile98(length) * frac
    if thr <= 0:
        return np.zeros(0, dtype=np.int64)
    above = length > thr
    ups = np.flatnonzero(above[1:] & ~above[:-1]) + 1
    if not len(ups):
        return np.zeros(0, dtype=np.int64)
    refr, t_wave, ahead = round(refractory_s * fs), round(0.36 * fs), round(0.2 * fs)
    # where the transform peaks within ``ahead`` samples of each crossing (the first largest, as argmax), all at
    # once: the windows past the end padded with -inf
    ext = np.concatenate([length, np.full(ahead, -np.inf)])
    ks = (ups + np.argmax(ext[ups[:, None] + np.arange(ahead)], axis=1)).tolist()
    peaks = length[ks].tolist()
    out: list[int] = []
    last, last_peak = -t_wave, 0.0
    for u, k, pk in zip(ups.tolist(), ks, peaks, strict=True):
        if u - last < refr:
            continue
        if u - last < t_wave and pk < 0.5 * last_peak:
            continue  # a T wave: within 360 ms and less than half the slope of the QRS before (Pan & Tompkins 1985)
        last, last_peak = u, pk
        out.append(k - w // 2)
    return np.asarray(out, dtype=np.int64)


def steady(rr: np.ndarray, tol: float, changes: int) -> bool:
    """Whether the RR intervals ``rr`` (1-D, any unit) are a regular rhythm in pieces: at most ``changes`` of their
    consecutive pairs differ by more than ``tol`` of the shorter (a rate step, such as a tachycardia's onset, is one
    or two; a premature beat with its pause three); noise and motion detections, whose RR vary by 40-60 %, change at
    almost every pair, as does atrial fibrillation."""
    return _changes(rr, 1, tol) <= changes


def periodic(rr: np.ndarray, lag: int, tol: float, changes: int) -> bool:
    """Whether the RR intervals ``rr`` repeat with a period of ``lag`` beats (a bigeminy: 2, a trigeminy: 3): at
    most ``changes`` of the pairs ``lag`` apart differ by more than ``tol`` of the shorter, and at least 2 such pairs
    for each that may."""
    return len(rr) >= lag + 2 * (changes + 1) and _changes(rr, lag, tol) <= changes


def _changes(rr: np.ndarray, lag: int, tol: float) -> int:
    """How many of the pairs of intervals ``lag`` apart in ``rr`` differ by more than ``tol`` of the shorter."""
    a, b = rr[lag:], rr[:-lag]
    return int(np.count_nonzero(np.abs(a - b) > tol * np.minimum(a, b)))


def kurtosis_sqi(y: np.ndarray) -> float:
    """Pearson's kurtosis (3 for a Gaussian); 0 for a constant signal."""
    y = y - y.mean()
    y2 = y * y
    v = float(y2.mean())
    return 0.0 if v <= 0 else float(np.dot(y2, y2)) / len(y2) / (v * v)


@functools.lru_cache(maxsize=64)
def _psqi_bands(n: int, fs: float) -> tuple[slice | np.ndarray, slice | np.ndarray]:
    """:func:`power_sqi`'s 5-40 Hz and 5-15 Hz bins of an ``n``-sample window's periodogram: as slices (the bins of
    a band are consecutive: the same elements, in order, as the boolean masks pick), else the masks (read-only)."""
    f = np.fft.rfftfreq(n, 1.0 / fs)
    out: list[slice | np.ndarray] = []
    for mask in ((f >= 5) & (f <= min(40.0, fs / 2)), (f >= 5) & (f <= 15)):
        at = np.flatnonzero(mask)
        if len(at) and at[-1] - at[0] + 1 == len(at):
            out.append(slice(int(at[0]), int(at[-1]) + 1))
        else:
            mask.flags.writeable = False
            out.append(mask)
    return out[0], out[1]


def power_sqi(y: np.ndarray, fs: float, *, taper: np.ndarray | None = None) -> float:
    """The share of the 5-40 Hz power (of the window's periodogram, Hann-tapered) that lies at 5-15 Hz; nan
    without power."""
    p = np.abs(np.fft.rfft(y * (np.hanning(len(y)) if taper is None else taper))) ** 2
    band, qrs = _psqi_bands(len(y), fs)
    den = float(p[band].sum())
    return float(p[qrs].sum()) / den if den > 0 else float("nan")


class SignalQuality:
    """One bed's stretch quality.  ``push(x, qrs)``: the raw samples just pushed (1-D, finite) and the absolute
    indices (fiducials) of the QRS the monitor's detector decided in that push; returns the last
    :class:`Stretch` (None until a first window has filled).  ``noisy``: whether the last stretch was noisy.
    Indices are absolute sample indices counted by the caller (``start``: the index of the next sample).

    Ratings are made at fixed positions of the stream, whatever its chunks: the first once ``first_window_s`` plus
    ``lag_s`` have arrived, then every ``step_s`` of signal after it (a push that passes several such points makes
    a rating at each, each window ending ``lag_s`` before its point).  So the stretches rated, and which of them a
    QRS is judged by (:meth:`rating_at`), do not depend on how a device cuts its stream into packets (with one
    made at the end of each push, 0.1, 0.25, 0.5 and 1 s packets gave different extreme-tachycardia alarms on the
    CinC 2015 development records: one true alarm raised or not)."""

    def __init__(self, fs: float, cfg: SQIConfig = SQIConfig(), *, start: int = 0) -> None:
        self.fs, self.cfg = fs, cfg
        self.n = round(cfg.window_s * fs)
        self.first_n = min(self.n, round(cfg.first_window_s * fs))
        self.recent_n = self.n if cfg.recent_s is None else min(self.n, round(cfg.recent_s * fs))
        self.origin = start  # the stream's first sample: windows before a full one start here
        self.lag = round(cfg.lag_s * fs)
        self.step = max(1, round(cfg.step_s * fs))
        self.tol = cfg.match_s * fs
        self.taper = np.hanning(self.n)
        self.parts: deque[np.ndarray] = deque()
        self.held = 0  # samples in parts
        self.buf_start = start  # absolute index of the first sample held
        self.total = start
        self.qrs: deque[float] = deque()
        self.next_at = start + self.first_n + self.lag  # the next rating's point (a sample index)
        self.last: Stretch | None = None
        self.due_at: list[int] = []  # the points of ratings left to the caller (push with defer; rate_many)
        # the ratings of the last HISTORY_S of the stream (at least the last), with their points: rating_at
        self.history: deque[tuple[int, Stretch]] = deque()
        self.pushed_from = start  # the latest push's first sample

    @property
    def noisy(self) -> bool:
        return self.last is not None and self.last.noisy

    @property
    def due(self) -> bool:
        """Whether ratings are left to the caller (a push with ``defer``)."""
        return bool(self.due_at)

    def partial(self, at: int) -> bool:
        """Whether the rating at point ``at`` has a window shorter than ``window_s`` (the stream has not that much
        by then)."""
        return at - self.lag - self.origin < self.n

    def rating_at(self, index: float) -> Stretch | None:
        """The stretch rated last at or before sample ``index`` (None: none yet): what a QRS decided there is
        judged by."""
        for at, st in reversed(self.history):
            if at <= index:
                return st
        return None

    def noisy_at(self, index: float) -> bool:
        st = self.rating_at(index)
        return st is not None and st.noisy

    def settled_noisy_at(self, index: float) -> bool | None:
        """:meth:`noisy_at` once every rating at or before sample ``index`` is made (it will not change); None until
        then (the stream has not reached that point, or a deferred rating there waits for the caller)."""
        if self.next_at <= index or any(d <= index for d in self.due_at):
            return None
        return self.noisy_at(index)

    def _keep(self, at: int, st: Stretch) -> None:
        self.last = st
        self.history.append((at, st))
        # (from the latest push's start: a push of more than HISTORY_S, a round of a recording's joined chunks, lost
        # the ratings of its own first QRS: 254 CinC records at once in 10 s packets, t117l's extreme tachycardia
        # 7.6 s late, and 9 other records' rate, VT and VF alarms moved, a session 51 reading)
        old = self.pushed_from - round(HISTORY_S * self.fs)  # (pushed_from is at most total)
        while len(self.history) > 1 and self.history[1][0] <= old:
            self.history.popleft()

    def push(self, x: np.ndarray, qrs: list[float] | tuple[float, ...] = (), *, defer: bool = False) -> Stretch | None:
        """``defer``: ratings that fall due are not made here but left to the caller (:attr:`due_at`; it rates
        every bed's at once with :func:`rate_many`); returns the last stretch rated before."""
        if len(x):
            self.parts.append(np.asarray(x, dtype=np.float64))
            self.held += len(x)
            self.pushed_from = self.total
            self.total += len(x)
        if qrs:
            self.qrs.extend(qrs)
        while self.total >= self.next_at:
            at, self.next_at = self.next_at, self.next_at + self.step
            if defer:
                self.due_at.append(at)
            else:
                self._keep(at, self._rate(at))
        return self.last

    def _window(self, at: int) -> tuple[np.ndarray, np.ndarray, float, int, int]:
        """The rating's first step: the window of the rating at point ``at``, the monitor's QRS in it -> (window,
        those QRS relative to its start, detector 2's refractory period in s, start, stop).  The buffer is trimmed
        to what this window and the next point's need."""
        stop = at - self.lag
        # until a full window: the last first_window_s (a burst of noise at the start leaves the ratings sooner)
        start = max(stop - self.first_n, self.origin) if self.partial(at) else stop - self.n
        buf = np.concatenate(self.parts) if len(self.parts) > 1 else self.parts[0]
        keep = min(start, at + self.step - self.lag - self.n)  # what this window and the next point's need
        if keep > self.buf_start:
            buf = buf[keep - self.buf_start:]
            self.buf_start = keep
        self.parts = deque([buf])
        self.held = len(buf)
        w = buf[start - self.buf_start: stop - self.buf_start]
        while self.qrs and self.qrs[0] < stop - self.n - self.tol:  # (a full window's, while they are shorter)
            self.qrs.popleft()
        mine = np.asarray([q for q in self.qrs if start - self.tol <= q < stop], dtype=np.float64) - start
        # wqrs's 250 ms eye-closing period, shortened to 0.8 of detector 1's median RR at rates over 190 bpm
        refr = min(0.25, 0.8 * _median(np.diff(mine).tolist()) / self.fs) if len(mine) > 2 else 0.25
        return w, mine, refr, start, stop

    def _stretch(self, mine: np.ndarray, theirs: np.ndarray, k: float, p: float, start: int, stop: int,
                 w: np.ndarray | None = None) -> Stretch:
        """The rating of the window ``w`` (raw samples from ``start`` to ``stop``) from ``mine`` (the monitor's QRS in
        it, relative to its start), ``theirs`` (detector 2's), its kurtosis ``k`` and power index ``p``."""
        cfg = self.cfg
        span = stop - start
        # counted over the window less the matching tolerance at each end, where a beat's partner may lie outside
        t, hi = theirs.astype(np.float64), span - self.tol
        b = bsqi(mine, t, self.tol, lo=self.tol, hi=hi) if max(len(mine), len(theirs)) >= cfg.min_beats else None
        noisy = (b is not None and b < cfg.bsqi_min) or k < cfg.ksqi_min
        # a stream's first, shorter windows (first_window_s up to window_s) need as many beats in proportion
        need = (max(4, math.ceil(cfg.fast_beats * span / self.n)) if self.first_n <= span < self.n
                else cfg.fast_beats)
        if noisy and len(mine) >= need:
            rr = np.diff(mine)
            med = _median(rr.tolist())
            regular = rr.std() < cfg.fast_cv * rr.mean()
            if regular and k >= cfg.fast_ksqi and med < cfg.fast_rr_s * self.fs:
                noisy = False  # a fast regular rhythm: neither index holds there (module docstring)
            elif (steady(rr, cfg.fast_cv, cfg.organised_changes)
                  and b is not None and med >= 60.0 / cfg.organised_max_bpm * self.fs
                  and (b >= cfg.organised_bsqi
                       or (cfg.organised_lagged
                           and lagged_bsqi(mine, t, self.tol, lo=self.tol, hi=hi) >= cfg.organised_bsqi))):
                noisy = False  # an organised rhythm both detectors agree on: the kurtosis alone does not make it noise
            elif (w is not None and b is not None and k >= cfg.ksqi_min
                  and med >= 60.0 / cfg.organised_max_bpm * self.fs and self._patterned(mine, t, rr, w, hi)):
                noisy = False  # a bigeminy whose smaller complexes detector 2 misses (module docstring)
        return Stretch(start, stop, b, k, p, noisy)

    def _patterned(self, mine: np.ndarray, theirs: np.ndarray, rr: np.ndarray, w: np.ndarray, hi: float) -> bool:
        """Whether a window that disagrees only by detector 2's missed QRS is a bigeminal or trigeminal rhythm
        (``patterned_slope``): detector 1's intervals ``rr`` not regular (:func:`steady`) but repeating with a period
        of 2 or 3 beats (:func:`periodic`), every one of detector 2's QRS counted (from the match tolerance to
        ``hi``) one of detector 1's, those it missed all at the same places in the pattern (every beat at the others
        found), alike in steepest raw slope (within 40 ms; each within twice any other's), their median at least
        ``patterned_slope`` of the median of those it found and none over ``patterned_spike`` times it."""
        cfg = self.cfg
        if cfg.patterned_slope <= 0 or steady(rr, cfg.fast_cv, cfg.organised_changes):
            return False  # (a regular rhythm: detector 2 missing some of it is what noise does)
        lag = next((n for n in (2, 3) if periodic(rr, n, cfg.fast_cv, cfg.organised_changes)), None)
        if lag is None:
            return False
        pairs = _pairs(mine, theirs, self.tol)
        inside = [j for j, x in enumerate(theirs.tolist()) if self.tol <= x < hi]
        if len(inside) < cfg.min_beats or not set(inside) <= {j for _, j in pairs}:
            return False
        found = {i for i, _ in pairs}
        # (detector 1's QRS within the match tolerance of the window's edges are left out, as bsqi counts them)
        counted = [i for i, x in enumerate(mine.tolist()) if self.tol <= x < hi]
        missed = [i for i in counted if i not in found]
        found = {i for i in counted if i in found}
        # ... the complexes it missed lie at one place in the pattern (or two of a trigeminy's three), and it found
        # every complex at the other: noise that lifts its threshold misses beats anywhere
        if not missed or not found or len({i % lag for i in missed}) == lag:
            return False
        d = np.abs(np.diff(w))
        h = max(1, round(0.04 * self.fs))
        segs = [d[max(0, int(x) - h):int(x) + h] for x in mine.tolist()]
        steep = [float(g.max(initial=0.0)) for g in segs]
        # a pacemaker pulse: its steep part (the slope at half its steepest or more) 2 samples and 6 ms at most
        if any(np.count_nonzero(segs[i] >= 0.5 * steep[i]) <= min(2, 0.006 * self.fs) for i in missed):
            return False
        ref = _median([steep[i] for i in sorted(found)])
        got = [steep[i] for i in missed]
        # alike among themselves (within a factor of 2: a trigeminy's dull T waves beside its QRS passed the median
        # alone, a reviewer), and none over patterned_spike times as steep; pulses above (a pacemaker's atrial pulses
        # counted as beats: a false extreme tachycardia once they were rated clean, the same reviewer)
        return (_median(got) >= cfg.patterned_slope * ref and max(got) <= cfg.patterned_spike * ref
                and max(got) <= 2.0 * min(got))

    def _rate(self, at: int) -> Stretch:
        w, mine, refr, start, stop = self._window(at)
        return self._ended(self._rate_window(w, mine, refr, start, stop), w, mine, refr)

    def _rate_window(self, w: np.ndarray, mine: np.ndarray, refr: float, start: int, stop: int) -> Stretch:
        """The indices of the window ``w`` (``mine``: the monitor's QRS in it, relative to its start)."""
        cfg = self.cfg
        theirs = curve_length_qrs(w, self.fs, refractory_s=max(0.15, refr), hp_s=cfg.length_hp_s)
        y = w - _moving_mean(w, round(cfg.kurtosis_hp_s * self.fs))  # baseline wander and slow waves out
        taper = self.taper if len(w) == self.n else np.hanning(len(w))
        return self._stretch(mine, theirs, kurtosis_sqi(y), power_sqi(y, self.fs, taper=taper), start, stop, w)

    def _ended(self, st: Stretch, w: np.ndarray, mine: np.ndarray, refr: float) -> Stretch:
        """A noisy window whose last ``recent_s`` are clean by a margin (rated alone with the same indices, and
        bSQI at least ``recent_bsqi`` there) is clean (``ended``): a burst of noise then marks beats for a few seconds
        after it, not for ``window_s`` (module docstring)."""
        m = self.recent_n
        if not st.noisy or m >= len(w):
            return st
        off = len(w) - m
        sub = mine[mine >= off - self.tol] - off
        recent = self._rate_window(w[off:], sub, refr, st.start + off, st.stop)
        if recent.noisy or recent.bsqi is None or recent.bsqi < self.cfg.recent_bsqi:
            return st
        return replace(st, noisy=False, ended=True)


def _moving_mean_rows(x: np.ndarray, n: int) -> np.ndarray:
    """:func:`_moving_mean` of each row of ``x`` (2-D), the same values (the running sum along the row)."""
    b, m = x.shape
    c = np.empty((b, m + 1))
    c[:, 0] = 0.0
    np.cumsum(x, axis=1, out=c[:, 1:])
    lo, hi, den = _mm_index(m, n)
    return (c.take(hi, axis=1) - c.take(lo, axis=1)) / den


def _curve_length_rows(x: np.ndarray, fs: float, refractory_s: Sequence[float], *, frac: float = THR_FRAC,
                       hp_s: float | None = None) -> list[np.ndarray]:
    """:func:`curve_length_qrs` of each row of ``x`` (2-D), ``refractory_s`` one per row: the same positions.  The
    transform, its percentile, the crossings and their peaks as array operations over all rows; the refractory and
    T-wave rules per crossing."""
    b, n = x.shape
    w = max(2, round(0.13 * fs))
    empty = np.zeros(0, dtype=np.int64)
    if n < max(3 * w, round(0.5 * fs)):
        return [empty] * b
    y = _moving_mean_rows(x, max(1, round(fs / 30.0)))
    for k in _mains_lengths(fs):
        y = _moving_mean_rows(y, k)
    if hp_s is not None:
        y = y - _moving_mean_rows(x, max(2, round(hp_s * fs)))
    c = np.empty((b, n))
    c[:, 0] = 0.0
    np.cumsum(np.abs(np.diff(y, axis=1)), axis=1, out=c[:, 1:])
    length = np.zeros((b, n))
    length[:, w:] = c[:, w:] - c[:, :-w]
    v = (n - 1) * 0.98  # _percentile98 of each row
    j = math.floor(v)
    g = v - j
    if j + 1 >= n:
        thr = np.array([_percentile98(r) for r in length]) * frac
    else:
        part = np.partition(length, (j, j + 1), axis=1)
        lo, hi = part[:, j], part[:, j + 1]
        d = hi - lo
        thr = (hi - d * (1.0 - g) if g >= 0.5 else lo + d * g) * frac
    above = length > thr[:, None]
    rows, ups = np.nonzero(above[:, 1:] & ~above[:, :-1])
    ups += 1
    ahead = round(0.2 * fs)
    ext = np.concatenate([length, np.full((b, ahead), -np.inf)], axis=1)
    ks = ups + np.argmax(ext[rows[:, None], ups[:, None] + np.arange(ahead)], axis=1)
    peaks = length[rows, ks].tolist()
    t_wave = round(0.36 * fs)
    bounds = np.searchsorted(rows, np.arange(b + 1)).tolist()
    ups_l, ks_l, thr_l = ups.tolist(), ks.tolist(), thr.tolist()
    out: list[np.ndarray] = []
    for r in range(b):
        a, e = bounds[r], bounds[r + 1]
        if thr_l[r] <= 0 or a == e:
            out.append(empty)
            continue
        refr = round(refractory_s[r] * fs)
        found: list[int] = []
        last, last_peak = -t_wave, 0.0
        for q in range(a, e):
            u, pk = ups_l[q], peaks[q]
            if u - last < refr:
                continue
            if u - last < t_wave and pk < 0.5 * last_peak:
                continue  # a T wave (as curve_length_qrs)
            last, last_peak = u, pk
            found.append(ks_l[q] - w // 2)
        out.append(np.asarray(found, dtype=np.int64))
    return out


def rate_many(quals: Sequence[SignalQuality]) -> None:
    """The deferred ratings of every ``quals[i]`` with points in :attr:`SignalQuality.due_at` (a push with ``defer``):
    its :attr:`SignalQuality.last` and history as its own ratings would set them, the same values.  Windows of one
    length, rate and configuration are rated as one ``(windows, n)`` array (moving means, the length transform and
    its percentile, the kurtosis' means, the periodogram: each row the same arithmetic as a window alone); the
    matching of the two detectors per bed.  A bed's several points are rated in their order."""
    groups: dict[tuple[int, float, SQIConfig], list[tuple[SignalQuality, int]]] = defaultdict(list)
    for q in quals:
        due, q.due_at = q.due_at, []
        for at in due:
            if q.partial(at):  # a stream's first seconds: a window of its own length, rated alone
                q._keep(at, q._rate(at))
            else:
                groups[(q.n, q.fs, q.cfg)].append((q, at))
    for (n, fs, cfg), group in groups.items():
        # a bed's points are in their order in the group, so its windows are taken (its buffer trimmed) and its
        # ratings kept in order, within a block and from block to block
        for k in range(0, len(group), RATE_BLOCK):
            _rate_block(group[k:k + RATE_BLOCK], n, fs, cfg)


RATE_BLOCK = 32  # windows rated as one array: more make arrays that leave the CPU's caches (512 took 2.5x longer)
HISTORY_S = 30.0  # the ratings kept for rating_at before the latest push's start: each of its QRS's is found


def _rate_block(qs: Sequence[tuple[SignalQuality, int]], n: int, fs: float, cfg: SQIConfig) -> None:
    if len(qs) < 2:
        for q, at in qs:
            q._keep(at, q._rate(at))
        return
    preps = [q._window(at) for q, at in qs]
    w = np.stack([p[0] for p in preps])
    theirs = _curve_length_rows(w, fs, [max(0.15, p[2]) for p in preps], hp_s=cfg.length_hp_s)
    y = w - _moving_mean_rows(w, round(cfg.kurtosis_hp_s * fs))
    # kurtosis_sqi of each row
    yc = y - y.mean(axis=1)[:, None]
    y2 = yc * yc
    var = y2.mean(axis=1).tolist()
    # power_sqi of each row
    pw = np.abs(np.fft.rfft(y * qs[0][0].taper, axis=1)) ** 2
    band, qrs = _psqi_bands(n, fs)
    dens, nums = pw[:, band].sum(axis=1).tolist(), pw[:, qrs].sum(axis=1).tolist()
    for r, ((q, at), (_, mine, _, start, stop)) in enumerate(zip(qs, preps, strict=True)):
        v = var[r]
        k = 0.0 if v <= 0 else float(np.dot(y2[r], y2[r])) / n / (v * v)
        p = nums[r] / dens[r] if dens[r] > 0 else float("nan")
        q._keep(at, q._ended(q._stretch(mine, theirs[r], k, p, start, stop, w[r]), w[r], mine, preps[r][2]))
