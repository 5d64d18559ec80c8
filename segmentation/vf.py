"""Ventricular fibrillation / flutter detection on the raw ECG (VF has no beats), streaming, per bed.

Every ``hop_s`` (1 s) the last ``window_s`` (4 s) of each bed's signal is analysed.  The signal is
band-limited causally (0.5-30 Hz Butterworth, state carried across chunks, as the AED literature
pre-processes it: Amann, Tratnig and Unterkofler 2005) and decimated by an integer factor to an
internal rate of 100-200 Hz, so that one design serves any ``fs`` from 100 to 1000 Hz; every feature is
defined in seconds and hertz, not samples.  Features of a window (all published VF detectors, reviewed
and compared by Amann et al., "Reliability of old and new ventricular fibrillation detection
algorithms for automated external defibrillators", BioMed Eng OnLine 4:60, 2005):

``leak``  VF-filter leakage (Kuo and Dillman 1978, Computers in Cardiology 5:347-349): the signal is
          taken as a sinusoid of its mean period ``T = 2 pi sum|x| / sum|dx|``; a notch at that
          frequency (``x[i] + x[i - T/2]``) leaves little of a fibrillatory wave (leakage near 0) and
          much of a beat train (near 1).
``tcsc``  Threshold crossing sample count (Arafat, Chowdhury and Hasan 2009, Med Biol Eng Comput
          49:455-463): share of samples above 0.2 of the window's largest absolute value, after a
          0.25 s cosine taper at both ends.  Narrow QRS complexes leave it low; VF raises it.
``a2``    Barro et al. 1998 (SPEC; "Algorithmic sequential decision-making in the frequency domain for
          life threatening ventricular arrhythmias and imitative artefacts", Ann Biomed Eng 17:385-400 -
          as Amann 2005 implements it): share of the spectral amplitude within 0.7-1.4 times the peak
          frequency ``F`` (0.5-9 Hz), amplitudes below 5 % of the largest set to zero.
``fsmn``  Barro's normalised first spectral moment ``(1/F) sum f a / sum a`` up to ``min(20 F, 30 Hz)``:
          near 1 for a quasi-sinusoid.
``conc``  Spectral concentration: share of the 0.5-30 Hz power in the VF band 2.5-7.5 Hz.
``kurt``  log kurtosis ``E x^4 / (E x^2)^2`` (a sinusoid 1.5, a beat train of narrow QRS far more).
``dkurt`` log kurtosis of the first difference (QRS slopes are rare and steep; VF slopes are not).
``hf``    log ratio of the 20-40 Hz power (muscle noise, QRS edges; mains hum notched out of both bands since session
          33) to the 0.5-30 Hz power.
``lf``    share of the 0.5-30 Hz power below 1.5 Hz (electrode motion, baseline steps).
``amp``   log robust peak-to-peak amplitude (97th - 3rd percentile), mV.
``freq``  the peak frequency ``F``, Hz.
``acf``   the largest normalised autocorrelation at lags of 0.12-0.5 s (2-8 Hz): flutter and VF repeat
          themselves at their own rate, noise does not (Chen, Clarkson and Fan 1996, "A robust sequential
          detection algorithm for cardiac arrhythmia classification", IEEE TBME 43(11):1120-1125, use it so).
``envcv`` coefficient of variation of the 0.25 s RMS over the window: VF is a sustained wave, a beat
          train or a noise burst is not.
``slowacf`` the largest normalised autocorrelation at lags of 0.6-1.5 s (40-100 per minute): no input of the model
          (:data:`INPUTS`), it vetoes VF (:func:`slow_rhythm`).

The features are combined by a logistic regression (as Figuera et al. 2016, "Machine learning
techniques for the detection of shockable rhythms in automated external defibrillators", PLoS ONE
11(7):e0159654, and Li, Rajagopalan and Clifford 2014, IEEE TBME 61(6):1607-1613 combine such
features) into ``p_vf``; a second logistic model of the same features gives ``p_artifact`` (noise bursts,
electrode motion).  A window is ``vf`` when ``p_vf >= vf_threshold`` and it is not an artifact
(``p_artifact >= artifact_threshold``, 0.5): **the artifact condition wins**.  Windows with missing samples (NaN), a
flat line or a signal beyond any ECG's amplitude are artifacts too.  Both models' coefficients were fitted on
development data with record-level folds (``ecgmon.evaluation.vfdb``; the figures are in its docstring).

The artifact threshold was chosen for the VF alarm alone (the fewest false VF alarms), and at it the model calls
much clean ECG artifact: 13.7 % of MIT-BIH DS1's and 13.9 % of the SVDB development half's clean windows (no noise,
VF or VT annotated; MIT-BIH 112's sinus rhythm 78 %), since its artifact class was fitted on NSTDB 118's and VFDB's
noise with balanced class weights.  So a window is *noise* (:attr:`VFWindow.noise`), for the judgments on beats
(the VT rule, the beat types and the alarm policy's "artifact" kind), only at ``p_artifact >= noise_threshold``
(0.8; and every window of missing samples or beyond an ECG's amplitude): 2.3 % and 0.9 % of those clean windows,
80 % of NSTDB 118's noise windows at 6 dB SNR and worse (in-sample for the model), 47 % of VFDB's ``(NOISE``
windows (``python -m ecgmon.evaluation.vfdb noise``).  Chosen on that share of clean windows alone; the asystole
and pause timers keep the artifact verdict (docs/alarms.md, "Noise for the beats").

:class:`VFBank` analyses many beds of one sampling rate in one vectorised pass (``(beds, samples)``
arrays); :class:`VFDetector` is one bed.  :class:`VFAlarm` turns a bed's windows into the alarm
condition ("fibrillatory or flutter waveform for >= 4 s": ``raise_windows`` consecutive VF windows).
Everything is causal: a window is analysed once its last sample has arrived.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np
from scipy import signal

from ecgmon.core.limits import check_fs
from ecgmon.segmentation.filters import MAINS_HZ, mains_notch

__all__ = ["CLASSES", "FEATURES", "INPUTS", "VFAlarm", "VFBank", "VFConfig", "VFDetector", "VFModel", "VFPool",
           "VFWindow", "decide", "fibrillation_mv", "fine_organised", "noise_of", "slow_rhythm", "vf_features"]

FEATURES = ("leak", "tcsc", "a2", "fsmn", "conc", "kurt", "dkurt", "hf", "lf", "amp", "freq", "acf", "envcv",
            "slowacf")
INPUTS = FEATURES[:-1]  # the models' inputs (slowacf is the slow-rhythm veto's alone)


CLASSES = ("other", "vf", "artifact")


@dataclass(frozen=True, slots=True)
class VFModel:
    """A multinomial logistic model over :data:`FEATURES` and :data:`CLASSES`:
    ``p = softmax(bias + weights @ ((f - mean) / scale))``."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[tuple[float, ...], ...]  # (classes, features)
    bias: tuple[float, ...]  # (classes,)

    def probs(self, f: np.ndarray) -> np.ndarray:
        """``f``: (..., len(FEATURES)) -> (..., len(CLASSES)) probabilities; non-finite features give NaN.  The
        model reads the first ``len(mean)`` features (:data:`INPUTS`)."""
        u = (f[..., :len(self.mean)] - np.asarray(self.mean)) / np.asarray(self.scale)
        z = u @ np.asarray(self.weights).T + np.asarray(self.bias)
        z = z - np.max(z, axis=-1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=-1, keepdims=True)


# Fitted by `python -m ecgmon.evaluation.vfdb fit` (see that module): every development window of
# vfdb-dev, cinc2015-dev (false alarms only), mitdb-ds1, nstdb-118 and svdb-dev; thresholds chosen there.
VF_MODEL = VFModel(
    mean=(0.789322, 0.189776, 0.194837, 3.99701, 0.392256, 2.18098, 2.65167, -3.15745, 0.110236, 0.149613, 3.16911,
          0.161878, 0.653469),
    scale=(0.0983663, 0.147341, 0.106788, 2.44936, 0.154612, 1.51114, 1.51383, 1.32111, 0.119739, 0.92246, 2.04434,
           0.178932, 0.212045),
    weights=(
        (-0.237043, -1.02577, 0.905531, -0.0419691, -0.495345, -1.68043, 1.72667, 0.750932, -0.500688, 0.624698,
         -0.583828, -0.25294, 0.506552),
        (-0.167517, 1.43831, -0.247793, 0.177913, 1.19457, 2.73411, -2.60083, -0.31709, 0.542754, -1.34556, 0.562579,
         0.270007, 0.170119),
        (0.404559, -0.41254, -0.657738, -0.135944, -0.699222, -1.05367, 0.874162, -0.433843, -0.0420663, 0.720858,
         0.0212491, -0.0170662, -0.676671),
    ),
    bias=(2.72178, -3.73611, 1.01432),
)


@dataclass(frozen=True, slots=True)
class VFConfig:
    """Times in seconds, frequencies in Hz, amplitudes in mV."""

    window_s: float = 4.0
    hop_s: float = 1.0
    band_hz: tuple[float, float] = (0.5, 30.0)
    hf_band_hz: tuple[float, float] = (20.0, 40.0)
    mains_hz: tuple[float, ...] = MAINS_HZ  # notched out of both bands (() none, as before session 33)
    vf_threshold: float = 0.9
    artifact_threshold: float = 0.5
    # noise for the judgments on beats (the VT rule, the beat types; not the asystole and pause timers, which keep
    # the artifact verdict): the artifact model's probability at least this.  The VF alarm keeps artifact_threshold,
    # chosen for it (fewest false VF alarms); at 0.5, 13.7 % of MIT-BIH DS1's and 13.9 % of the SVDB development
    # half's clean windows were artifact (record 112's 78 %), at 0.8 2.3 % and 0.9 %, with 80 % of NSTDB 118's noise
    # windows at 6 dB SNR and worse still noise
    noise_threshold: float = 0.8
    # robust peak-to-peak below this is no VF but asystole (or leads off): the AHA's AED performance
    # recommendations call a rhythm under 0.1 mV peak-to-peak asystole and "fine VF" only from 0.1-0.2 mV
    # (Kerber RE et al., Circulation 95(6):1677-1682, 1997); the development data's VF/flutter windows are all
    # >= 0.22 mV by the 0.5-30 Hz amplitude (vfdb-dev and 207, 1,359 windows), so the floor costs no VF seen there.
    # Measured on the window's content above 1.5 Hz (fibrillation_mv; session 27: baseline wander on a flat line was
    # VF): vfdb-dev's 1,238 VF/flutter windows are all >= 0.14 mV by it
    flat_mv: float = 0.1
    # a window whose power lies mostly (wander_lf) below 1.5 Hz is VF only if its content above 1.5 Hz is more than
    # fine VF (fine_vf_mv: the AHA's 0.1-0.2 mV, Kerber 1997): its shape features read the wander
    wander_lf: float = 0.7
    fine_vf_mv: float = 0.2
    # an organised slow rhythm is no VF (slow_rhythm): autocorrelation at 0.6-1.5 s lags at least slow_acf and
    # slow_margin over that at 0.12-0.5 s
    slow_acf: float = 0.5
    slow_margin: float = 0.5
    # a wave under organised_mv that repeats itself so (slowacf at least slow_acf) at a peak frequency of at most
    # organised_hz (the 0.25 Hz bin of 135-143 per minute, under flutter's rates) is no VF either (fine_organised)
    organised_mv: float = 0.25
    organised_hz: float = 2.25
    organised_low_hz: float = 1.5  # ... and at least this: a wave whose peak is lower is a baseline's, not the atria's
    max_mv: float = 8.0  # robust peak-to-peak above this: no ECG, an artifact
    model: VFModel = field(default=VF_MODEL)


@dataclass(frozen=True, slots=True)
class VFWindow:
    """One analysed window of one bed.  ``end``: absolute sample index (at the bed's ``fs``) one past the
    window's last sample; ``vf``: fibrillatory/flutter waveform and no artifact; ``features`` in
    :data:`FEATURES` order."""

    end: int
    p_vf: float
    p_artifact: float
    vf: bool
    artifact: bool
    features: tuple[float, ...] = ()
    # noise or motion for the judgments on beats (VFConfig.noise_threshold; every noise window is an artifact);
    # None: as ``artifact``
    noise: bool | None = None

    @property
    def unreadable(self) -> bool:
        """The window is noise for the judgments on beats (:attr:`noise`, or :attr:`artifact` where not given)."""
        return self.artifact if self.noise is None else self.noise


def decide(feats: np.ndarray, cfg: VFConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``feats`` (..., len(FEATURES)) -> ``(p_vf, p_artifact, vf, artifact)``, each (...): the model's
    probabilities and the decisions (an artifact is never VF; nor is a window too small to analyse)."""
    p = cfg.model.probs(feats)
    p_vf, p_art = p[..., 1], p[..., 2]
    hard = _unanalysable(feats, cfg)
    artifact = hard | (p_art >= cfg.artifact_threshold)
    fib = fibrillation_mv(feats)
    # where a baseline wander holds most of the power, the model's shape features describe it, not a fibrillation:
    # VF only if what lies above 1.5 Hz is more than fine VF (a flat line's 40 uV of noise under 0.3 mV of 0.25 Hz
    # wander was VF/flutter; 1 of vfdb-dev's 1,238 VF/flutter windows is under both limits; session 27)
    wander = (feats[..., FEATURES.index("lf")] >= cfg.wander_lf) & (fib < cfg.fine_vf_mv)
    vf = (~hard & (p_vf >= cfg.vf_threshold) & ~artifact & (fib >= cfg.flat_mv) & ~wander & ~slow_rhythm(feats, cfg)
          & ~fine_organised(feats, cfg, fib=fib))
    return p_vf, p_art, vf, artifact


def fine_organised(feats: np.ndarray, cfg: VFConfig, *, fib: np.ndarray | None = None) -> np.ndarray:
    """``feats`` (..., len(FEATURES)) -> (...): a wave about as small as fine VF (:func:`fibrillation_mv` under
    ``organised_mv``, 0.25 mV; fine VF is 0.1-0.2 mV, Kerber 1997) that repeats itself over 0.6-1.5 s (``slowacf`` at
    least ``slow_acf``) at a peak frequency of ``organised_low_hz`` to ``organised_hz`` (1.5-2.25 Hz in the window's
    0.25 Hz bins: 90 to about 143 per minute, under ventricular flutter's 150 and more): atrial activity without QRS,
    or what a lead shows of an organised rhythm whose QRS it lost, not fibrillation, which does not repeat over
    seconds.  A lead II whose QRS fell to a fiftieth (an electrode moving) kept its 0.15 mV P waves at 120 per minute,
    which :func:`slow_rhythm` leaves (at that rate they repeat at VF's lags as much): a false VF/flutter alarm with one
    lead, and with two beside a second lead that showed every QRS (a reviewer, session 49).  Synthetic P waves of
    0.1-0.2 mV at 90-135 per minute, 128-500 Hz: VF in up to every window before, in none now; at 150 per minute and
    faster (P waves, flutter waves) VF as before.  The first form (no lower limit, up to 2.5 Hz) took fine VF under a
    0.75-1.25 Hz baseline swing (its peak frequency there, repeating over seconds) and a 0.2 mV flutter at 150/min
    for atrial activity: asystole instead of VF (a reviewer, session 50).  Of the development data's windows
    (``python -m ecgmon.evaluation.vfdb features``; session 50) none touching a VF/flutter episode is vetoed, nor any
    other decided VF (VFDB 426's fine VF, 0.15-0.2 mV, does not repeat: ``slowacf`` 0.1-0.43).  ``fib``:
    :func:`fibrillation_mv` of ``feats`` where the caller has it."""
    fib = fibrillation_mv(feats) if fib is None else fib
    return ((fib < cfg.organised_mv) & (feats[..., FEATURES.index("slowacf")] >= cfg.slow_acf)
            & (feats[..., FEATURES.index("freq")] >= cfg.organised_low_hz)
            & (feats[..., FEATURES.index("freq")] <= cfg.organised_hz))


def slow_rhythm(feats: np.ndarray, cfg: VFConfig) -> np.ndarray:
    """``feats`` (..., len(FEATURES)) -> (...): the window repeats itself at a rate of 40-100 per minute (``slowacf``
    at least ``slow_acf``) far more than at VF's and flutter's (``slowacf`` over ``acf``, lags 0.12-0.5 s, by at
    least ``slow_margin``): an organised slow rhythm, whatever its waves look like to the model - P waves without QRS
    (ventricular standstill, 0.12 mV at 75 per minute: VF/flutter a second after asystole, a newcomer, session 27).
    Flutter and VF repeat themselves at their own rate too (their multiples reach the slow lags, but ``acf`` is as
    high), and fibrillation does not repeat over seconds.  On the VFDB development half 1 of its 1,238 VF/flutter
    windows is vetoed (``python -m ecgmon.evaluation.vfdb``'s windows; session 27)."""
    slow = feats[..., FEATURES.index("slowacf")]
    return (slow >= cfg.slow_acf) & (slow - feats[..., FEATURES.index("acf")] >= cfg.slow_margin)


def fibrillation_mv(feats: np.ndarray) -> np.ndarray:
    """``feats`` (..., len(FEATURES)) -> (...): the robust peak-to-peak amplitude (mV) of a window's content above
    1.5 Hz, estimated as ``amp * sqrt(1 - lf)`` (the 0.5-30 Hz amplitude scaled by the root of the power share above
    1.5 Hz).  VF's dominant frequency lies at about 3-10 Hz and flutter's at 2.5-5 Hz (Amann et al. 2005); baseline
    wander (breathing, 0.15-0.5 Hz) is neither: a flat line with 0.2-0.3 mV of it passed the 0.5-30 Hz amplitude floor
    and, its samples spread evenly (threshold crossings high), was called VF/flutter instead of asystole (a newcomer,
    session 27).  No VF/flutter window of the VFDB development half is under 0.14 mV by this measure."""
    amp = np.exp(feats[..., FEATURES.index("amp")])
    return amp * np.sqrt(np.clip(1.0 - feats[..., FEATURES.index("lf")], 0.0, 1.0))


def _unanalysable(feats: np.ndarray, cfg: VFConfig) -> np.ndarray:
    """Windows that are artifact whatever the model says: a feature not finite (missing samples) or a robust
    peak-to-peak beyond any ECG's (``max_mv``)."""
    pp = np.exp(feats[..., FEATURES.index("amp")])
    return ~np.isfinite(feats).all(axis=-1) | (pp > cfg.max_mv)


def noise_of(feats: np.ndarray, p_artifact: np.ndarray, cfg: VFConfig) -> np.ndarray:
    """Per window (``feats`` (..., len(FEATURES)), ``p_artifact`` (...)): noise or motion for the judgments on beats
    (:attr:`VFConfig.noise_threshold`; the windows :func:`decide` calls artifact whatever the model says too)."""
    return _unanalysable(feats, cfg) | (p_artifact >= cfg.noise_threshold)


def _decimation(fs: float) -> int:
    """The integer factor that brings ``fs`` (100-1000 Hz) to an internal rate of 100-200 Hz."""
    return max(1, int(fs // 100))


@functools.lru_cache(maxsize=32)
def _designs(fs: float, band_hz: tuple[float, float], hf_band_hz: tuple[float, float],
             mains_hz: tuple[float, ...] = MAINS_HZ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The VF detector's filters at ``fs``, each followed by notches at ``mains_hz``: (0.5-30 Hz band-limiting sos,
    20-40 Hz band-pass sos, the first's steady-state ``zi`` for a unit input), shared by every bank of this design:
    never written to (scipy's sosfilt kernel takes only writable arrays, so they are not marked read-only)."""
    lo, hi = band_hz
    sos_lp = signal.butter(4, hi, btype="lowpass", fs=fs, output="sos")
    sos_hp = signal.butter(1, lo, btype="highpass", fs=fs, output="sos")
    # mains interference is neither fibrillation nor muscle noise: notched out of both bands (an order-2 band-pass
    # lets a third of 50 Hz into the 20-40 Hz band, and a flat line with 0.1 mV of hum read as artifact, which holds
    # the asystole timer; 0.5 mV of 50 Hz left in the 0.5-30 Hz band at 500 Hz read as flutter)
    notch = mains_notch(fs, mains_hz)
    sos = np.ascontiguousarray(np.vstack([sos_hp, sos_lp, notch]))
    h_lo, h_hi = hf_band_hz
    sos_hf = signal.butter(2, [h_lo, min(h_hi, 0.45 * fs)], btype="bandpass", fs=fs, output="sos")
    sos_hf = np.ascontiguousarray(np.vstack([sos_hf, notch]))
    return sos, sos_hf, signal.sosfilt_zi(sos)


def vf_features(x: np.ndarray, hf2: np.ndarray, fs: float) -> np.ndarray:
    """Features of windows.

    ``x``: (m, L) band-limited (0.5-30 Hz) signal, mV; ``hf2``: (m, L) squared 20-40 Hz signal;
    ``fs``: their rate, Hz.  Returns (m, len(FEATURES)) float64.  A window of zeros gives finite values.
    """
    n = x.shape[1]
    x = x - x.mean(axis=1, keepdims=True)
    eps = 1e-12
    ax = np.abs(x)
    dx = np.diff(x, axis=1)
    sa, sd = ax.sum(axis=1), np.abs(dx).sum(axis=1)
    # Kuo & Dillman: half the mean period, in samples
    half = np.clip(np.floor(math.pi * sa / (sd + eps) + 0.5), 1, n // 2).astype(np.int64)
    idx = np.arange(n)[None, :] - half[:, None]
    valid = idx >= 0
    xs = np.take_along_axis(x, np.maximum(idx, 0), axis=1)
    leak = (np.abs(x + xs) * valid).sum(axis=1) / (((ax + np.abs(xs)) * valid).sum(axis=1) + eps)
    # TCSC: 0.25 s cosine taper, normalised, share above 0.2
    k = max(1, round(0.25 * fs))
    taper = np.ones(n)
    ramp = 0.5 * (1 - np.cos(np.pi * np.arange(k) / k))
    taper[:k], taper[n - k:] = ramp, ramp[::-1]
    xt = np.abs(x * taper)
    tcsc = (xt > 0.2 * (xt.max(axis=1, keepdims=True) + eps)).mean(axis=1)
    # spectra
    f = np.fft.rfftfreq(n, 1.0 / fs)
    spec = np.abs(np.fft.rfft(x * np.hamming(n)[None, :], axis=1))
    pw = spec ** 2
    band = (f >= 0.5) & (f <= 30.0)
    ptot = (pw * band).sum(axis=1) + eps
    conc = (pw * ((f >= 2.5) & (f <= 7.5))).sum(axis=1) / ptot
    lf = (pw * ((f >= 0.5) & (f < 1.5))).sum(axis=1) / ptot
    pk = (f >= 0.5) & (f <= 9.0)
    fpk = f[pk][np.argmax(spec[:, pk], axis=1)]
    a = np.where(spec >= 0.05 * spec[:, band].max(axis=1, keepdims=True), spec, 0.0)
    upto = (f[None, :] >= 0.5) & (f[None, :] <= np.minimum(20 * fpk, 30.0)[:, None])
    asum = (a * upto).sum(axis=1) + eps
    near = (f[None, :] >= 0.7 * fpk[:, None]) & (f[None, :] <= 1.4 * fpk[:, None])
    a2 = (a * near).sum(axis=1) / asum
    fsmn = (a * upto * f[None, :]).sum(axis=1) / asum / fpk
    x2 = (x * x).mean(axis=1)
    kurt = np.log(((x * x) ** 2).mean(axis=1) / (x2 ** 2 + eps) + eps)
    d2 = (dx * dx).mean(axis=1)
    dkurt = np.log(((dx * dx) ** 2).mean(axis=1) / (d2 ** 2 + eps) + eps)
    # clipped: a synthetic or heavily filtered signal with no 20-40 Hz content at all is not 'more VF'
    hf = np.clip(np.log((hf2.mean(axis=1) + 1e-9) / (x2 + 1e-9)), -10.0, 5.0)
    q = np.percentile(x, [3.0, 97.0], axis=1)
    amp = np.log(q[1] - q[0] + 1e-3)
    # autocorrelation (zero-padded, so not circular), normalised by the overlap's length
    r = np.fft.irfft(np.abs(np.fft.rfft(x, n=2 * n, axis=1)) ** 2, axis=1)[:, :n]
    r = r / (n - np.arange(n))[None, :]
    lo, hi = max(1, round(0.12 * fs)), min(n - 1, round(0.5 * fs))
    acf = r[:, lo:hi + 1].max(axis=1) / (r[:, 0] + eps)
    s0, s1 = min(n - 1, round(0.6 * fs)), min(n - 1, round(1.5 * fs))
    slowacf = r[:, s0:s1 + 1].max(axis=1) / (r[:, 0] + eps)
    b = max(1, round(0.25 * fs))
    nb = n // b
    rms = np.sqrt((x[:, :nb * b] ** 2).reshape(len(x), nb, b).mean(axis=2))
    envcv = rms.std(axis=1) / (rms.mean(axis=1) + eps)
    return np.stack([leak, tcsc, a2, fsmn, conc, kurt, dkurt, hf, lf, amp, fpk, acf, envcv, slowacf], axis=1)


class VFBank:
    """VF detection for ``beds`` beds sampled at one rate, in one vectorised pass.

    ``push(x)`` takes a (beds, n) float array (mV; NaN = missing sample) of the next ``n`` samples of every
    bed and returns the windows completed by them: ``(ends, p_vf, p_artifact, vf, artifact, features)`` with
    shapes (k,), (beds, k), (beds, k), (beds, k), (beds, k), (beds, k, len(FEATURES)).  Filter states carry
    across pushes, so any chunking gives the same windows.  Raises ValueError for a sampling rate outside
    100-1000 Hz or a push of the wrong shape.
    """

    def __init__(self, fs: float, beds: int, cfg: VFConfig = VFConfig()) -> None:
        self.fs = check_fs(fs, "VF detector sampling rate")
        if beds < 1:
            raise ValueError(f"VFBank needs at least one bed, got {beds}")
        self.beds, self.cfg = beds, cfg
        self.q = _decimation(self.fs)
        self.fs_int = self.fs / self.q
        self.win = round(cfg.window_s * self.fs_int)
        self.hop = round(cfg.hop_s * self.fs_int)
        # one design per rate and band, shared by every bed's bank (a ward of 512 beds paid 2 s of scipy design)
        self.sos, self.sos_hf, self.zi_unit = _designs(self.fs, cfg.band_hz, cfg.hf_band_hz, cfg.mains_hz)
        self.zi: np.ndarray | None = None
        self.zi_hf = np.zeros((self.sos_hf.shape[0], beds, 2))
        self.last = np.zeros(beds)  # last finite sample per bed (held over NaN runs)
        self.seen = 0  # samples pushed, at fs
        self.count = 0  # internal samples produced
        self.buf = np.zeros((beds, 0))
        self.buf_hf = np.zeros((beds, 0))
        self.buf_bad = np.zeros((beds, 0), dtype=bool)
        self.buf_start = 0  # internal index of buf[:, 0]
        self.next_end = self.win  # internal index (exclusive) of the next window's end

    def push(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return self.analyse(x)[:6]

    def analyse(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                              np.ndarray]:
        """:meth:`push`'s windows and, last, each one's noise verdict for the judgments on beats (beds, k):
        :func:`noise_of`, and every window with missing samples or a flat line, as :class:`VFPool` decides it."""
        ends, xw, hw, bw = self.windows(x)
        if not len(ends):
            return (*self._empty(), np.zeros((self.beds, 0), dtype=bool))
        k = len(ends)
        feats = vf_features(xw.reshape(-1, self.win), hw.reshape(-1, self.win), self.fs_int)
        feats = feats.reshape(self.beds, k, -1)
        p_vf, p_art, vf, artifact = decide(feats, self.cfg)
        noise = noise_of(feats, p_art, self.cfg) | bw
        artifact |= bw
        vf &= ~bw
        return ends, p_vf, p_art, vf, artifact, feats, noise

    def windows(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The filtering half of :meth:`push`: the windows the next (beds, n) samples complete, not yet
        analysed: ``(ends, x, hf2, bad)`` of shapes (k,), (beds, k, L), (beds, k, L), (beds, k) (``L`` samples
        at the internal rate; ``bad``: the window had missing samples).  :class:`VFPool` analyses the windows
        of many beds in one call."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] != self.beds:
            raise ValueError(f"VFBank.push wants ({self.beds}, n) samples, got shape {x.shape}")
        n = x.shape[1]
        none = (np.zeros(0, dtype=np.int64), np.zeros((self.beds, 0, self.win)), np.zeros((self.beds, 0, self.win)),
                np.zeros((self.beds, 0), dtype=bool))
        if n == 0:
            return none
        x, bad = self._hold(x)
        y, h = self._filter(x)
        return self._gather(y, h, bad)

    def _hold(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Missing samples (NaN) replaced by the last finite value (no step for the filters to ring on):
        ``(x, bad)``."""
        n = x.shape[1]
        bad = ~np.isfinite(x)
        if bad.any():
            x = x.copy()
            for b in np.flatnonzero(bad.any(axis=1)):
                row, m = x[b], bad[b]
                ok = np.flatnonzero(~m)
                fill = np.maximum.accumulate(np.where(~m, np.arange(n), -1))
                row[m] = np.where(fill[m] >= 0, row[np.maximum(fill[m], 0)], self.last[b])
                if len(ok):
                    self.last[b] = row[ok[-1]]
            good = ~bad.any(axis=1)
            self.last[good] = x[good, -1]
        else:
            self.last = x[:, -1].copy()
        return x, bad

    def _filter(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.zi is None:
            self.zi = self.zi_unit[:, None, :] * x[None, :, 0, None]
        y, self.zi = signal.sosfilt(self.sos, x, axis=1, zi=self.zi)
        h, self.zi_hf = signal.sosfilt(self.sos_hf, x, axis=1, zi=self.zi_hf)
        return y, h

    @staticmethod
    def filter_many(banks: list[VFBank], xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`_filter` of many one-bed banks of one rate at once: ``xs`` (banks, n) held samples ->
        (band-limited, 20-40 Hz) (banks, n) each, every bank's filter state carried as its own filtering
        would (the filters run row by row: the same values)."""
        b0 = banks[0]
        for b, x in zip(banks, xs, strict=True):
            if b.zi is None:
                b.zi = b.zi_unit[:, None, :] * x[0]
        zi = np.concatenate([b.zi for b in banks if b.zi is not None], axis=1)
        zh = np.concatenate([b.zi_hf for b in banks], axis=1)
        y, zi = signal.sosfilt(b0.sos, xs, axis=1, zi=zi)
        h, zh = signal.sosfilt(b0.sos_hf, xs, axis=1, zi=zh)
        for i, b in enumerate(banks):  # views: sosfilt takes a copy of its zi, nothing writes into them
            b.zi, b.zi_hf = zi[:, i:i + 1], zh[:, i:i + 1]
        return y, h

    def _gather(self, y: np.ndarray, h: np.ndarray, bad: np.ndarray,
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Filtered samples onto the internal grid and into the buffer; the windows they complete."""
        n = y.shape[1]
        none = (np.zeros(0, dtype=np.int64), np.zeros((self.beds, 0, self.win)), np.zeros((self.beds, 0, self.win)),
                np.zeros((self.beds, 0), dtype=bool))
        first = (-self.seen) % self.q  # first position in this push that falls on the internal grid
        self.seen += n
        pick = slice(first, None, self.q)
        y, h2, badd = y[:, pick], (h * h)[:, pick], bad[:, pick]
        self.buf = np.concatenate([self.buf, y], axis=1)
        self.buf_hf = np.concatenate([self.buf_hf, h2], axis=1)
        self.buf_bad = np.concatenate([self.buf_bad, badd], axis=1)
        self.count += y.shape[1]
        ends = list(range(self.next_end, self.count + 1, self.hop))
        if not ends:
            return none
        self.next_end = ends[-1] + self.hop
        off = [e - self.win - self.buf_start for e in ends]
        xw = np.stack([self.buf[:, o:o + self.win] for o in off], axis=1)  # (beds, k, L)
        hw = np.stack([self.buf_hf[:, o:o + self.win] for o in off], axis=1)
        bw = np.stack([self.buf_bad[:, o:o + self.win] for o in off], axis=1).any(axis=2)
        bw = np.asarray(bw, dtype=bool)
        drop = self.next_end - self.win - self.buf_start
        if drop > 0:
            self.buf, self.buf_hf, self.buf_bad = self.buf[:, drop:], self.buf_hf[:, drop:], self.buf_bad[:, drop:]
            self.buf_start += drop
        end_idx = (np.asarray(ends) - 1) * self.q + 1
        return end_idx, xw, hw, bw

    def _empty(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        z = np.zeros((self.beds, 0))
        return (np.zeros(0, dtype=np.int64), z, z, z.astype(bool), z.astype(bool),
                np.zeros((self.beds, 0, len(FEATURES))))


class VFDetector:
    """One bed: ``push(samples) -> list[VFWindow]`` (samples in mV at ``fs`` Hz, NaN = missing)."""

    def __init__(self, fs: float, cfg: VFConfig = VFConfig()) -> None:
        self.bank = VFBank(fs, 1, cfg)

    @property
    def fs(self) -> float:
        return self.bank.fs

    def push(self, samples: np.ndarray) -> list[VFWindow]:
        x = np.asarray(samples, dtype=np.float64)
        if x.ndim != 1:
            raise ValueError(f"VFDetector.push wants a 1-D array of samples, got shape {x.shape}")
        ends, p, pa, vf, art, feats, noise = self.bank.analyse(x[None, :])
        return [VFWindow(int(ends[j]), float(p[0, j]), float(pa[0, j]), bool(vf[0, j]), bool(art[0, j]),
                         tuple(float(v) for v in feats[0, j]), bool(noise[0, j])) for j in range(len(ends))]


FEATURE_BLOCK = 64  # windows per vf_features call in VFPool.flush


class VFPool:
    """VF analysis for many beds that do not arrive in step (live devices, any sampling rates): each bed keeps
    its own :class:`VFBank` (one bed: its filters and buffer), :meth:`add` queues a bed's new samples, and
    :meth:`flush` filters every queued block (one filter call for the beds of a rate whose blocks have one
    length) and analyses every window they complete in one feature call per internal rate (spectra and
    statistics of 4 s windows).  The
    decisions are those :class:`VFBank` gives (the same features and model, window by window).

    The driver flushes when ``due`` (``batch`` windows are waiting, or the oldest has waited ``max_wait_s``
    of wall time), so a window's decision is at most ``max_wait_s`` later than a per-bed detector's."""

    def __init__(self, cfg: VFConfig = VFConfig(), *, batch: int = 256, max_wait_s: float = 0.25) -> None:
        self.cfg, self.batch, self.max_wait_s = cfg, batch, max_wait_s
        self._raw: list[tuple[object, VFBank, np.ndarray]] = []  # samples not yet filtered, in arrival order
        self._queue: dict[tuple[float, int], list[tuple[object, int, np.ndarray, np.ndarray, bool]]] = {}
        self._n = 0
        self._oldest: float | None = None

    def bank(self, fs: float) -> VFBank:
        """A new bed's bank (its filter state and buffer)."""
        return VFBank(fs, 1, self.cfg)

    def add(self, key: object, bank: VFBank, samples: np.ndarray, now: float) -> None:
        """Bed ``key``'s next samples (1-D, mV, NaN = missing) for its ``bank``, filtered with every other bed's
        at the next :meth:`flush`; ``now``: time.monotonic()."""
        x = np.asarray(samples, dtype=np.float64)
        if x.ndim != 1:
            raise ValueError(f"VFPool.add wants a 1-D array of samples, got shape {x.shape}")
        if not len(x):
            return
        self._raw.append((key, bank, x))
        self._n += 1
        if self._oldest is None:
            self._oldest = now

    def due(self, now: float) -> bool:
        return self._n >= self.batch or (self._oldest is not None and now - self._oldest >= self.max_wait_s)

    @property
    def pending(self) -> int:
        """Blocks of samples waiting (about one window each when a bed's blocks are a second long)."""
        return self._n

    def _filter_raw(self) -> None:
        """Every queued block through its bank's filters: one filter call for all banks of a rate whose blocks
        have one length, each bank's blocks in order (a bank's k-th block in the k-th round); the windows they
        complete are queued for analysis."""
        rounds: dict[int, list[tuple[object, VFBank, np.ndarray]]] = {}
        seen: dict[int, int] = {}
        for item in self._raw:
            k = seen.get(id(item[1]), 0)
            seen[id(item[1])] = k + 1
            rounds.setdefault(k, []).append(item)
        self._raw = []
        for k in sorted(rounds):
            groups: dict[tuple[float, int], list[tuple[object, VFBank, np.ndarray]]] = {}
            for key, bank, x in rounds[k]:
                groups.setdefault((bank.fs, len(x)), []).append((key, bank, x))
            for items in groups.values():
                banks = [bank for _, bank, _ in items]
                xs, bad = _hold_many(banks, np.stack([x for _, _, x in items]))
                y, hf = VFBank.filter_many(banks, xs)
                for i, ends, xw, hw, bw in _gather_many(banks, y, hf, bad):
                    key, bank = items[i][0], banks[i]
                    q = self._queue.setdefault((bank.fs_int, bank.win), [])
                    for j, end in enumerate(ends.tolist()):
                        q.append((key, end, xw[j], hw[j], bool(bw[j])))

    def flush(self) -> list[tuple[object, VFWindow]]:
        """Every queued block filtered and every window it completes analysed: (bed key, window), per rate in
        the order the windows were completed."""
        self._filter_raw()
        out: list[tuple[object, VFWindow]] = []
        for (fs_int, _), q in self._queue.items():
            if not q:
                continue
            # in blocks of FEATURE_BLOCK windows: each row's features are its own (row-wise arithmetic), and
            # smaller arrays stay in the CPU's caches (a flush of ~400 windows as one array took 1.3x as long)
            feats = np.concatenate([
                vf_features(np.stack([w[2] for w in q[a:a + FEATURE_BLOCK]]),
                            np.stack([w[3] for w in q[a:a + FEATURE_BLOCK]]), fs_int)
                for a in range(0, len(q), FEATURE_BLOCK)])
            p_vf, p_art, vf, art = decide(feats, self.cfg)
            noise = noise_of(feats, p_art, self.cfg)
            rows = zip(p_vf.tolist(), p_art.tolist(), vf.tolist(), art.tolist(), noise.tolist(), feats.tolist(),
                       strict=True)
            for (key, end, _, _, bad), (pv, pa, v, a, nz, f) in zip(q, rows, strict=True):
                out.append((key, VFWindow(end, pv, pa, v and not bad, a or bad, tuple(f), nz or bad)))
        self._queue, self._n, self._oldest = {}, 0, None
        return out


def _hold_many(banks: list[VFBank], xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:meth:`VFBank._hold` of one-bed banks, row ``i`` of ``xs`` (banks, n) for ``banks[i]``: ``(held, bad)``."""
    bad = ~np.isfinite(xs)
    rows = np.flatnonzero(bad.any(axis=1)).tolist()
    if rows:
        xs = xs.copy()
        for i in rows:
            xs[i] = banks[i]._hold(xs[i:i + 1])[0][0]
    ends = xs[:, -1].copy()
    skip = set(rows)
    for i, b in enumerate(banks):
        if i not in skip:
            b.last = ends[i:i + 1]  # as _hold sets it for a row without missing samples
    return xs, bad


def _gather_many(banks: list[VFBank], y: np.ndarray, h: np.ndarray, bad: np.ndarray,
                 ) -> list[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """:meth:`VFBank._gather` of one-bed banks (row ``i`` of the filtered ``y``, ``h`` and ``bad`` for ``banks[i]``)
    -> ``(i, ends, x, hf2, bad)`` per bank with windows (``x``, ``hf2`` (k, L), ``bad`` (k,)).  Banks whose
    buffers stand alike (grid phase, buffer length, next window's end) take the same slices, so they are gathered
    as one ``(banks, samples)`` array; the others alone.  The same values as :meth:`VFBank._gather`."""
    n = y.shape[1]
    h2 = h * h
    same: dict[tuple[int, int, int, int, int, int], list[int]] = {}
    for i, b in enumerate(banks):
        same.setdefault((b.q, b.seen % b.q, b.buf.shape[1], b.next_end - b.buf_start, b.win, b.hop), []).append(i)
    out: list[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    for (q, phase, _, _, _, _), idx in same.items():
        if len(idx) == 1:
            i = idx[0]
            ends, xw, hw, bw = banks[i]._gather(y[i:i + 1], h[i:i + 1], bad[i:i + 1])
            if len(ends):
                out.append((i, ends, xw[0], hw[0], bw[0]))
            continue
        b0 = banks[idx[0]]
        pick = slice((-phase) % q, None, q)
        buf = np.concatenate([np.concatenate([banks[i].buf for i in idx]), y[idx, pick]], axis=1)
        buf_hf = np.concatenate([np.concatenate([banks[i].buf_hf for i in idx]), h2[idx, pick]], axis=1)
        buf_bad = np.concatenate([np.concatenate([banks[i].buf_bad for i in idx]), bad[idx, pick]], axis=1)
        # in buffer coordinates (internal index - buf_start; every bank's buffer holds [buf_start, count)), the
        # windows' ends are the same for the whole group: range(next_end, count + 1, hop) less buf_start
        rel = list(range(b0.next_end - b0.buf_start, buf.shape[1] + 1, b0.hop))
        added = buf.shape[1] - b0.buf.shape[1]
        if rel:
            xw = np.stack([buf[:, e - b0.win:e] for e in rel], axis=1)
            hw = np.stack([buf_hf[:, e - b0.win:e] for e in rel], axis=1)
            bw = np.asarray(np.stack([buf_bad[:, e - b0.win:e] for e in rel], axis=1).any(axis=2), dtype=bool)
            drop = rel[-1] + b0.hop - b0.win
        for g, i in enumerate(idx):
            b = banks[i]
            b.seen += n
            b.count += added
            b.buf, b.buf_hf, b.buf_bad = buf[g:g + 1], buf_hf[g:g + 1], buf_bad[g:g + 1]
            if not rel:
                continue
            start = b.buf_start
            b.next_end = start + rel[-1] + b0.hop
            if drop > 0:
                b.buf, b.buf_hf, b.buf_bad = b.buf[:, drop:], b.buf_hf[:, drop:], b.buf_bad[:, drop:]
                b.buf_start += drop
            out.append((i, (np.asarray([start + e for e in rel]) - 1) * q + 1, xw[g], hw[g], bw[g]))
    out.sort(key=lambda t: t[0])
    return out


class VFAlarm:
    """The VF/flutter alarm condition of one bed from its windows: active after ``raise_windows`` consecutive
    VF windows; cleared after ``clear_windows`` consecutive windows without VF over an organised rhythm (``step``'s
    ``organised``: the QRS detector found a regular rhythm there, e.g. after defibrillation), or after
    ``hold_windows`` consecutive windows without VF whatever the signal (the episode's hold: the windows of a
    coarse VF or a flutter come and go, and each return would otherwise be a new HIGH alarm).  The defaults
    (3 and 3) clear after 3 windows either way; the monitor holds for 10 (:attr:`ecgmon.monitor.lethal.LethalConfig.
    vf_episode_s`).  Artifact windows neither raise nor clear it (an active alarm stays while the signal cannot be
    analysed).  ``update(window) -> "raise" | "clear" | None``; ``update`` knows no rhythm (``organised`` False)."""

    def __init__(self, *, raise_windows: int = 2, clear_windows: int = 3, hold_windows: int = 3) -> None:
        if raise_windows < 1 or clear_windows < 1 or hold_windows < clear_windows:
            raise ValueError("raise_windows and clear_windows must be >= 1, hold_windows >= clear_windows")
        self.raise_n, self.clear_n, self.hold_n = raise_windows, clear_windows, hold_windows
        self.active = False
        self.run = 0  # consecutive windows towards the next transition
        self.calm = 0  # of them (active), the consecutive latest over an organised rhythm

    def update(self, w: VFWindow) -> str | None:
        return self.step(w.vf, w.artifact)

    def end(self) -> None:
        """The episode is over (cleared by :meth:`step`, or by the bed's lethal watch when asystole took over):
        inactive, the next ``raise_windows`` VF windows raise it again."""
        self.active, self.run, self.calm = False, 0, 0

    def step(self, vf: bool, artifact: bool, organised: bool = False) -> str | None:
        if artifact:
            return None
        if not self.active:
            self.run = self.run + 1 if vf else 0
            if self.run >= self.raise_n:
                self.active, self.run, self.calm = True, 0, 0
                return "raise"
            return None
        self.run = 0 if vf else self.run + 1
        self.calm = self.calm + 1 if organised and not vf else 0
        if self.run >= self.hold_n or self.calm >= self.clear_n:
            self.end()
            return "clear"
        return None
