"""Lethal-arrhythmia and rate alarms of one bed, from its QRS detections, beat types and VF windows.

These conditions are what a bedside monitor exists for; they are evaluated from the first seconds of a bed's
signal and are never held by per-bed learning (they need no learnt normal).  Definitions (HIGH priority)
follow the PhysioNet/Computing in Cardiology Challenge 2015 (Clifford GD et al., "The PhysioNet/Computing in
Cardiology Challenge 2015: reducing false arrhythmia alarms in the ICU", Computing in Cardiology 42:273-276),
which took them from the ICU monitors whose alarms it judged:

- asystole: no QRS for at least ``asystole_s`` (4 s);
- extreme bradycardia: heart rate below ``brady_bpm`` (40) for ``brady_beats`` (5) consecutive beats (the rate
  over the 4 intervals between those beats, as a monitor averages it); an interval of ``rate_gap_s`` (default
  ``asystole_s``) or more is no rate: it is the asystole alarm's (raised, or held because the signal could not
  be read), and the extreme rates count again from the beats after it, so that the beats that end an asystole
  do not raise bradycardia as well (MIT-BIH 116, 208: 3 such alarms on DS1);
- extreme tachycardia: heart rate above ``tachy_bpm`` (140) over the last ``tachy_beats`` (13) consecutive beats
  (the rate over their 12 intervals: atrial fibrillation at 150 bpm is over 140 although some of its intervals are
  not).  The Challenge's wording says 17 beats; its ICU monitors raised the alarm sooner: in 6 of the 44 true
  tachycardia alarms of the development third (t270s, t700s, ...) the fast rate begins only 4-5 s, 11-13 beats,
  before the monitor's alarm, and a 16-interval average, which needs about 14 fast beats out of a normal rate to
  cross 140, raised none of them.  13 beats (12 intervals) raised 5 of the 6; 9, 11 and 13 gave the same, 15 three
  (CinC development third, in-sample; docs/alarms.md);
- ventricular tachycardia: ``vt_beats`` (5) or more consecutive ventricular beats at a rate above ``vt_bpm``
  (100). A beat counts as ventricular for VT when the typer's P(ventricular) is at least ``vt_p`` (0.3, not the
  typer's own threshold, 0.4, chosen for VEB counting) and it is not in
  artifact; one beat not typed ventricular may lie inside the run (``vt_misread``: 5 ventricular beats among 6, the
  first and last ventricular, no interval over twice the run's median, ``vt_misread_rr``), as a monitor's VT call
  survives one misread complex; and the run's complexes must be alike (``vt_similar``: the median correlation of
  each QRS window with the one before, :attr:`~ecgmon.segmentation.vtype.VBeat.prev_corr`, at least 0.6), since
  noise and motion detections typed 'wide and unlike' are not alike while a VT run's complexes are (signal-quality
  gating of VT as CinC 2015 entries did: Plesinger et al. 2016, below; a polymorphic VT whose complexes are unlike
  is the VF detector's to call). Chosen on the CinC 2015 development records in two halves by record
  (docs/alarms.md).  Also met by ``vt_beats`` typed beats in a row whose complexes are very wide (QRS slope energy
  spread over ``vt_wide_s``, 160 ms, or more), regular and alike, whatever the typer says: a VT a bed has had from its
  first beats is the bed's template, and the typer types it as the bed's own (docs/alarms.md, session 42).  Once
  raised, a sustained VT's alarm is held by the chain of alike beats at over ``vt_bpm`` when the typer's template
  turns to the VT's complex and types its beats the bed's own (``vt_sustain``, armed by ``vt_sustain_beats`` or by
  the turn, ``vt_turn``), across up to ``vt_odd_beats`` odd complexes (capture beats, noise); docs/alarms.md,
  sessions 25, 44 and 47;
- ventricular fibrillation or flutter: a fibrillatory or flutter waveform for at least 4 s
  (:class:`ecgmon.segmentation.vf.VFAlarm` over :mod:`ecgmon.segmentation.vf` windows).  A window over which the
  QRS detector found an organised rhythm (:meth:`LethalWatch.organised`: at least ``organised_beats``, 5, QRS that
  the signal-quality index does not call noisy, their RR's coefficient of variation under ``organised_cv``, 0.1, no
  faster than ``organised_bpm``, 180) counts as not VF: a regular wide-complex rhythm at 160 bpm, whose waves the VF
  model took for flutter, raised VF/flutter instead of extreme tachycardia.  Ventricular flutter runs at about
  250-350 bpm and fibrillation is irregular.  Chosen on the synthetic rhythm; on the development records it changed
  only two VFDB alarms: a false VF alarm in 423's atrial fibrillation is gone, and 420 raises extreme tachycardia
  inside a reference VT episode (counted false there: VFDB has no beat annotations to confirm a rate); VF/flutter
  episodes alarmed 31/31 with the same delays, CinC 2015 and MIT-BIH DS1 the same.  Once on, the alarm is the
  episode's (``vf_episode_s``, 10 s): it clears after 3 windows without VF over an organised rhythm (3 or more
  clean, regular QRS in the window), otherwise only after 10 s without a VF window, so that a coarse VF or a flutter
  whose windows come and go is one alarm (VFDB development half: 104 raises for 31 episodes before, 40 now;
  docs/alarms.md "One VF/flutter episode, one alarm").  A held alarm does not hold asystole: over windows that no
  longer fibrillate asystole is judged as without it, and ends the VF alarm where it is raised.

MEDIUM priority, per bed: the heart rate (EC13-style average, :mod:`ecgmon.segmentation.heartrate` when the
segmenter gives one, else the mean of the last 8 RR) outside the bed's limits (``hr_low``/``hr_high``, default
50/120 bpm, as bedside monitors default for adults) for ``limit_s`` (10 s: IEC 60601-2-27 lets a heart-rate
alarm condition wait up to 10 s), and a pause: no QRS for ``pause_s`` (3 s).

Clearing has hysteresis so that an alarm does not flicker: asystole and pause clear after ``clear_beats`` (3)
QRS with RR under ``pause_s``; bradycardia once the rate over its beats is at or above ``brady_bpm + 5``;
tachycardia once it is at or below ``tachy_bpm - 10``; VT once under ``vt_clear_share`` of the last
``vt_clear_beats`` (8) typed beats are ventricular, a beat in artifact counting as ventricular
(``vt_artifact_holds``): by default (1/8) 8 clean beats in a row not typed ventricular (one misread beat does not
end a run), or once no VT run has come for ``vt_episode_s`` (60 s) over beats read clean (a slow ventricular
bigeminy or idioventricular rhythm after the run is not VT); options, off by default: ``vt_clear_bpm`` (VT also
clears once the rate over those beats is at or under it: on VFDB it cleared and raised VT again and again in
610's ventricular ectopy, false VT 12 -> 30) and
``vt_noisy`` (a QRS the signal-quality index calls noisy counts as in artifact: it lost 4 of 19 true CinC VT
alarms).  Half (0.5) with beats in artifact counting against VT clears the VT alarms that noise kept on in the
CinC 2015 'false' records (VT false alarms there 15 -> 9, no true one lost) but clears and raises VT again and
again in VFDB 418's wide-complex rhythm and 610's ventricular ectopy (VFDB false VT 13 -> 39, and extreme
tachycardia 17 -> 20 once the VT hold ends): not the default.  VT is not raised while the VF alarm is on (VF/flutter
outranks it; its waves typed ventricular would raise and clear VT again and again); rate limits once the
rate has been back inside them by 5 bpm for ``limit_s``.

Asystole against leads off: a flat line whose spread is below the ADC's noise (``leads_off``, from the
segmenter's quality check) or missing samples (signal loss) are technical conditions and hold the asystole
timer; any signal with baseline noise and no QRS is asystole.  Where the signal cannot tell, the HIGH alarm
is raised (a missed asystole costs a life, a false one a walk to the bed).  Artifact (the VF detector's
artifact class: noise bursts, electrode motion) holds VF and VT (a noisy stretch is not a rhythm; for the VT rule's
beats, the surer *noise* verdict: :attr:`ecgmon.segmentation.vf.VFWindow.noise`) and, with
``asystole_artifact`` (default), the asystole timer as leads off does: the time without QRS counts from the end
of the last window called artifact, so an amplifier's baseline step that hides the QRS for a few seconds
(MIT-BIH 116, 208) is not asystole, while 4 s of readable signal without QRS after it still is (signal-quality
gating of asystole, as CinC 2015 entries did: Plesinger F et al., "Taming of the monitors: reducing false
alarms in intensive care units", Physiol Meas 37(8), 2016; overview: Clifford GD et al., "False alarm reduction
in critical care", Physiol Meas 37(8), 2016).  Asystole is decided once a VF window covers the 4 s
(at most ``asystole_wait_s``, 3 s, later; about 1 s in practice); a watch never fed VF windows decides on the
QRS alone.  3 s is longer than a window's hop (1 s) and a bed's rhythm block (1 s) with the pool's wait together,
so the covering window always arrives within it and the alarm is raised at that window's end, whenever the bed's
work was flushed (2 s raised it at the chunk where the wait ran out in some block phases: a recording's asystole
then came up to 1.5 s later by the block phase alone, CinC 2015 a172s, a306s, a796s).  It does not hold the extreme
rates: the VF detector calls much of the Challenge's ICU signal noisy.

Alarm hierarchy (as bedside monitors chain their arrhythmia alarms): while the VF detector's last window is
VF/flutter or a VF or VT alarm is on, and for ``hold_s`` (10 s) after, extreme brady- and tachycardia are not
raised (the detections on fibrillatory waves are not beats, a VT alarm comes and goes with its runs, and the
higher alarm says more); asystole is not raised while the signal fibrillates (judged by the window at the
4 s and the latest: a flat line's noise that looks fibrillatory only afterwards is VF's to call).

Alarm chains (what the nurse hears; docs/alarms.md "Alarm chains and episodes"): a lower alarm of a chain is not
raised while a higher one is on, nor for ``chain_s`` (60 s) after it cleared, the episode the higher alarm announced
(:data:`CHAINS`: heart rate high under extreme tachycardia; heart rate low and pause under extreme bradycardia and
asystole), as bedside monitors chain their arrhythmia alarms and IEC 60601-1-8 has an alarm system give the
condition of the highest priority.  The pause is judged on readable signal as asystole is (``pause_artifact``:
the VF detector's artifact windows hold its timer too).  ``rate_episode_s`` (60 s) keeps an extreme-rate alarm on
until its condition has been absent that long, unless the rate is ``rate_resolved_bpm`` (15) inside its limit, which
ends the episode at once (``rate_resolved_s``, 0 by default: after the condition has been absent that long; a rate
hovering at its limit is one alarm; one plainly back leaves none on; a tachycardia is plainly back only when the rate
over the last ``tachy_resolved_beats``, 25, is too, as atrial fibrillation near the limit dips under it over 13), a
bradycardia's only over intervals the signal-quality index calls clean (with ``noisy_rates``: noise counted as beats
is no rate plainly back).
"ECG cannot be analysed" is not raised while asystole or VF/flutter is on (they say more) or leads off holds the
timer.

Every transition carries the sample index at which its condition was met (asystole: where it was decided).
Units: sample indices at the bed's ``fs``, seconds, beats per minute.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import cast

import numpy as np

from ecgmon.core.messages import Condition, Priority
from ecgmon.monitor.alarms import alike, announced


def _bpm(rate: float, limit: float) -> str:
    """A rate for an alarm message: whole bpm, unless rounding would show the very limit it crossed (a nurse reading
    "140 bpm, over 140" would doubt the alarm): then to a tenth ("140.4"), or a hundredth where the tenth shows it
    too ("120.04": "120.0 bpm, over the limit 120" was read as a contradiction, a newcomer, session 42)."""
    digits = next((d for d in range(3) if round(rate, d) != limit), 3)
    return f"{rate:.{digits}f}"


@dataclass(frozen=True, slots=True)
class LethalConfig:
    """Thresholds of the lethal and rate alarms (see the module docstring); every one is an ``ecgmon`` option."""

    asystole_s: float = 4.0
    brady_bpm: float = 40.0
    brady_beats: int = 5
    tachy_bpm: float = 140.0
    tachy_beats: int = 13
    vt_bpm: float = 100.0
    vt_beats: int = 5
    pause_s: float = 3.0
    # a pause is decided no sooner than this after it was due: the QRS detector learns its levels again after 3 s
    # without a QRS (QRSConfig.reacquire_s, = pause_s) and reports the QRS it then finds about 0.3-1 s later (at the
    # next candidate's look-ahead); decided at once, the pause was raised for a gap of 1.9 s that those QRS filled
    # (a newcomer's record after a VT, session 30: "pause" cleared 0.75 s before its own raise).  Its sample is
    # still the one where it was due.  0: at once (as before session 31).  With pause_artifact off the pause is
    # decided on the samples alone, at once (a pause ended by a QRS within the wait would never be raised there)
    pause_wait_s: float = 1.0
    hr_low: float = 50.0
    hr_high: float = 120.0
    limit_s: float = 10.0
    clear_beats: int = 3
    # "ECG cannot be analysed" (technical MEDIUM) clears after clear_beats clean QRS once the signal has been readable
    # for this long (s): noise that comes and goes is one episode, one alarm (VFDB and MIT-BIH DS1 development
    # records: 107 raises, 61 of them within 30 s of the same alarm's clearing, most 5-20 s); 0: at the clean QRS
    cannot_analyse_s: float = 10.0
    # a lead of a two-lead bed speaks for the bed (LeadFusion: a readable lead's silence holds the other's asystole)
    # only once its signal has been back this long without a loss, and has shown a QRS or run asystole_s (and the
    # asystole_wait_s its VF windows may take) without one (LethalWatch.settled): a lead that loses samples in every
    # packet restarts its detector every packet, whose first "QRS" on the scraps vetoed the other lead's true asystole
    settle_s: float = 2.0
    hold_s: float = 10.0  # the extreme rates stay held this long after VF/flutter or VT was last seen
    vt_clear_beats: int = 8  # VT clears on the last this many typed beats (not after one misread beat) ...
    vt_clear_share: float = 0.125  # ... once under this share of them is ventricular (0.125 of 8: 8 in a row not V)
    vt_artifact_holds: bool = True  # a beat in artifact counts as ventricular for clearing (holds VT) or as not
    # ... but not a beat of a slow regular rhythm: where each of the last vt_clear_beats - 1 typed intervals is at or
    # under vt_bpm and within vt_wide_regular of their median, a beat in artifact counts as not ventricular.  A sinus
    # rhythm at 72 bpm after a VT, read as noise under a respiratory baseline wander, held the VT's alarm on for as
    # long as the wander went on (a reviewer's synthetic VT, session 45); a VT under noise is fast, or its detections
    # are irregular where the noise hides some.  False: off
    vt_artifact_slow: bool = True
    # a VT run may hold this many beats not typed ventricular between its first and last ventricular beat (a
    # misread beat does not break it): vt_beats ventricular beats among vt_beats + vt_misread; 0: strictly in a row
    vt_misread: int = 1
    # ... in a run whose intervals are each within this share of their median (1.0: none over twice the median,
    # where more than one beat would be missing; CinC 2015 halves chose 1.0 over 0.25 and 0.4, docs/alarms.md)
    vt_misread_rr: float = 1.0
    # VT also clears once the rate over the last vt_clear_beats typed beats is at or under this (bpm); 0: off
    vt_clear_bpm: float = 0.0
    # VT's episode: it also clears once no VT run (vt_beats ventricular beats over vt_bpm) has come for this long (s)
    # and the last vt_clear_beats typed beats were all read (none in artifact): ventricular bigeminy or an
    # idioventricular rhythm at 60 bpm after a VT run is not VT (MIT-BIH 207 kept its VT alarm on for 4.6 min over
    # them); runs that recur within it are one episode (no alarm sounding again for each); 0: off
    vt_episode_s: float = 60.0
    # a beat counts as ventricular for the VT rule when the typer's P(ventricular) is at least this (None: the
    # typer's own decision, its threshold 0.4 chosen for VEB counting); chosen on CinC 2015 VT records, docs/alarms.md
    vt_p: float | None = 0.3
    # a beat whose QRS the signal-quality index called noisy (qrs(noisy=True)) counts for the VT rule as a beat in
    # the VF detector's artifact does: not ventricular (noise and motion typed 'wide and unlike' raised VT)
    vt_noisy: bool = False
    # the beats of a VT run are alike: the median correlation of each of the run's QRS windows with the one before
    # (VBeat.prev_corr) must be at least this (noise and motion detections typed ventricular are not alike)
    vt_similar: float = 0.6
    # a VT present from a bed's first beats: its complex is the bed's template from the fifth beat, and the typer
    # types every beat of it the bed's own (VFDB 611's 137 bpm VT played from its onset: no alarm in 60 s).  So VT is
    # also met, whatever the typer says, by vt_beats typed beats in a row (none in artifact) each of whose QRS slope
    # energy spreads over vt_wide_s or more (VBeat.width_s: the middle 80 % of the slope energy within +/- 150 ms of
    # the QRS, about half the QRS duration on narrow and bundle-branch-block complexes: MIT-BIH 109's LBBB 72-83 ms,
    # VFDB 418's wide sinus rhythm 104-120 ms; VFDB's VT complexes 164-230 ms), at a rate over vt_bpm, regular (each
    # interval within vt_wide_regular of their median) and alike (each QRS correlating vt_wide_similar or more with
    # the one before): population knowledge, a complex with no sharp QRS is ventricular (or a sine wave: as grave).
    # Noise and motion detections are wide too, but irregular and unlike each other (SVDB 854's motion: correlations
    # -0.5-0.8, intervals 0.24-0.69 s).  None: off
    vt_wide_s: float | None = 0.16
    vt_wide_regular: float = 0.25
    vt_wide_similar: float = 0.8
    # while VT is on, a typed beat that is very wide (vt_wide_s, not in artifact) at a rate over vt_bpm (its last
    # vt_beats typed beats), alike the one before (vt_wide_similar) and in time (its interval within vt_wide_regular of
    # their median) counts as ventricular towards clearing it, as the run's beats do: the typer types a VT that
    # is the bed's template as the bed's own, and its alarm, raised by the very-wide rule, cleared with "0 of the last 8
    # beats ventricular" wherever one lost cycle or one complex less alike broke the run of 5 (VFDB 611 with its
    # complexes counted once: 18 VT raises in its 15-minute VT, session 43).  It does not extend the episode: with no
    # VT run met for vt_episode_s the alarm clears
    vt_wide_holds: bool = True
    # a VT run is regular (monomorphic VT's cycle varies little; atrial fibrillation's aberrated beats do not keep a
    # cycle): each of its intervals within this share of their median; 0: off (any value lost 6-9 of 22 true CinC VT
    # alarms: detected runs of true VT are irregular too; docs/alarms.md)
    vt_regular: float = 0.0
    # sustained VT: while the VT alarm is on, a beat not typed ventricular that goes on with the run (its QRS alike
    # the one before, vt_similar; the last vt_beats intervals over vt_bpm; not in artifact) counts as one of the run,
    # until a beat breaks that chain.  The typer's template is the medoid of the bed's last 48 beats: after about 24
    # beats of sustained VT it is the VT complex, and the run's beats were typed 'dominant': a synthetic VT at 130-160
    # bpm lost its HIGH alarm 11-15 s into a 40 s run (a newcomer, session 25).  The chain holds only once the run
    # has had vt_sustain_beats beats typed ventricular since its alarm, counting those typed ventricular in artifact
    # in the unbroken row of ventricular beats that raised it (the template turns after about 24 from the VT's onset,
    # and a VT whose first beats lay in noise is raised late: session 45): a VT raised on a few misread beats of a
    # fast regular rhythm (sinus tachycardia at 130 bpm, its complexes alike) would otherwise never clear (a
    # reviewer, session 25).  False: off
    vt_sustain: bool = True
    vt_sustain_beats: int = 20
    # ... or once the typer's template has turned to the run's complex, whichever comes first: a beat not typed
    # ventricular, alike the run's beat before it (prev_corr, or prev2_corr across one odd beat, at least
    # vt_turn_similar), like the bed's template (VBeat.corr at least vt_sustain_corr) by vt_turn more than that
    # ventricular beat was.  The template is the medoid of the bed's last 48 beats: it turns after about 24 beats of
    # VT where the bed had a long history, sooner where it had a short one (a VT 10 s after a bed's first beat: after
    # 13, when 13 V beats had been typed since the VT's onset and 9 since its alarm), and the VT alarm, its chain
    # not yet armed, cleared 8 beats later (a 60 s VT at 120 bpm alarmed for 8 s; session 47).  None: off
    vt_turn: float | None = 0.2
    vt_turn_similar: float = 0.9
    # ... the turn arms it only where the VT began abruptly: the run that raised the alarm at least vt_turn_onset
    # faster in cycle than the median of the 8 cycles before it.  A bundle branch block that appears at the same rate
    # (a rate-related block in a sinus tachycardia) is typed ventricular until the template turns to it too: armed by
    # the turn, its false VT was held as long as the rate stayed over 100 bpm (a reviewer's LBBB at 105-150 bpm 5-15
    # s after a bed's first beat: 50-68 s instead of 4-12; session 47).  A VT from a sinus rhythm at about its own
    # rate keeps the count rule alone
    vt_turn_onset: float = 0.15
    # up to this many odd complexes in a row in a sustained VT's chain (a capture or fusion beat, beats in a burst of
    # noise the artifact check let through: each unlike the one before) neither go on with the run nor break the
    # chain: the next beat goes on with it when alike the run's beat before a single odd one (VBeat.prev2_corr at
    # least vt_similar), or like the bed's template where the chain's last beat was (the template is then the VT's
    # complex); one more odd complex ends the chain.  Odd complexes count as not ventricular, so the alarm still
    # clears after vt_clear_beats beats not held.  Without it one such beat ended the chain for good and the alarm
    # cleared 8 beats later while the VT went on (1 s of muscle noise, 3 beats of a 150-180 bpm VT; session 47).
    # Without the limit a reviewer's VT that ended in a sinus tachycardia over 100 bpm had its odd sinus beats
    # bridged until the template turned back to the sinus complex, then a sinus beat "like the template" took the
    # chain up and the alarm held for as long as the tachycardia (260 s; session 47).  0: off
    vt_odd_beats: int = 3
    # ... and only while at least this share of the last vt_clear_beats typed beats held the alarm (typed ventricular,
    # went on with the chain, or lay in artifact): under it an odd complex ends the chain.  Complexes of two kinds in
    # turn (VFDB 418's annotated normal rhythm at 100-115 bpm, template-like and unlike beats alternating; a sinus
    # tachycardia with bigeminal PVCs of the VT's complex) are no VT going on (a reviewer, session 47); a burst of
    # noise over 3 of 8 beats is
    vt_odd_share: float = 0.6
    # ... but once the chain's complex has changed abruptly (a beat correlating under vt_sustain_jump with the one
    # before), a beat goes on with the run only while its QRS is like the bed's template (VBeat.corr: by then the
    # template is the VT's complex), or like it inverted (a wide complex whose fiducial moved to its other edge: corr
    # about -0.9, a reviewer's VT growing 5x in amplitude), by at least vt_sustain_corr, until a beat like it comes
    # back; one that is not counts as not ventricular without breaking the chain (fusion and capture beats, complexes
    # alternating in width: a reviewer, session 42).  A VT that converts to a sinus tachycardia over vt_bpm is a chain
    # of alike beats, but after an abrupt change, of beats unlike the template for the 20-odd beats until it turns:
    # without this the alarm held until the rate fell (a 110 bpm VT of 100 ms complexes converting to a narrow sinus
    # tachycardia at 110 bpm: 67 s after the conversion; the first sinus beat correlated 0.77 with the last VT
    # complex, the sinus beats 0.75 with the VT's template, the VT's own 0.99-1.0).  Without the abrupt change a
    # VT whose complex changed over 10-20 s, or whose width swung 100-150 ms every 20 s, lost its alarm or raised it
    # again and again (a reviewer, session 44).  Chosen on synthetic rhythms only (a VT stepping from 140 to 95 ms
    # complexes at 170 bpm correlated 0.84 with its template: held; at 0.9 it cleared and an extreme tachycardia
    # came 10 s later); docs/alarms.md, session 44.  vt_sustain_corr None: off (no template check)
    vt_sustain_corr: float | None = 0.8
    vt_sustain_jump: float = 0.9
    # no VT raised while "ECG cannot be analysed" is on (the artifact condition wins and says so).  Off: on the CinC
    # 2015 development third it removed 4 of 11 false VT alarms and lost 3 of 23 true ones (score 76.17 -> 73.55;
    # session 25, docs/alarms.md): true VT in the ICU often reads as noise to the signal-quality index
    vt_held_unanalysable: bool = False
    # no extreme tachycardia raised while "ECG cannot be analysed" is on (judged per lead).  Off: on NSTDB 118 it took
    # one false alarm of 5 off (-6 dB: the second lead's 149 bpm while it could not be analysed), but a reviewer's true
    # tachycardias of 150-180 bpm with a noise burst of 5-6 s every 12-15 s were raised on 0-2 of 20 links in 120 s
    # (20 of 20 without it): the condition needs 10 s readable to clear; NSTDB 118 played 2.2 times faster, 6 of 12
    # first alarms later, 3 by 25-42 s (session 58, docs/alarms.md).  CinC, VFDB, DS1 and SVDB development alarms:
    # identical either way
    tachy_held_unanalysable: bool = False
    # a bed with a second lead (--second-lead, LeadFusion): where VT is read. "confirmed" (the default since session
    # 30): the first lead's run, and the second lead's when the first lead typed 4 beats in a row ventricular within
    # it (docs/alarms.md, 'A second lead', session 30); "first": the first
    # lead's alone; "either": either lead's run; "both": the first lead's run, confirmed by the second lead's where
    # that can be read (docs/alarms.md, 'A second lead': either cost MIT-BIH DS1 25 false VT alarms in 11 h)
    second_lead_vt: str = "confirmed"
    # a bed with a second lead: the first lead's VT run is not raised where the second lead, readable, goes on with
    # fewer beats over it, its own complexes (none ventricular or in artifact, like its template, of its size) at its
    # own rhythm (LeadFusion._other_rhythm; session 53, docs/alarms.md)
    second_lead_veto: bool = True
    rate_gap_s: float | None = None  # an RR this long or more is no rate (it is asystole's); None: asystole_s
    # the VF detector's artifact windows (noise, motion, an amplifier's baseline step) hold the asystole timer
    asystole_artifact: bool = True
    asystole_wait_s: float = 3.0  # the longest asystole waits past asystole_s for the windows that cover it
    # a QRS in a stretch the signal-quality index calls noisy (segmentation.sqi) is no fast heart rate: extreme
    # tachycardia and the high limit count clean intervals only, and "ECG cannot be analysed" says so
    noisy_rates: bool = True
    # a stretch the saturation check calls clipped on both rails (segmentation.quality.Quality.clipped: a fifth of
    # the last 2 s at the window's maximum and a fifth at its minimum, the amplifier's range exceeded both ways, as
    # large motion does) is artifact: an interval with either QRS in it is no heart rate, slow or fast (the clipping
    # hides beats: MIT-BIH 119 clipped for 6 s read 39 bpm, a false extreme bradycardia), and a beat typed in it is
    # no ventricular beat (clipped motion at 1 Hz raised VT on a synthetic sinus rhythm).  Not one rail alone (a
    # quantised or noise-free baseline at the window's minimum looks pinned too: asystole and bradycardia were missed
    # with it), and not for the VF windows (true VF clipped by a device's range was missed: a reviewer, session 39)
    saturated_artifact: bool = True
    # alarm chaining (docs/alarms.md "Alarm chains"): a lower alarm of a chain (heart rate high < extreme
    # tachycardia; pause, heart rate low < extreme bradycardia, asystole) is not raised while a higher one of its
    # chain is on, nor for this long after it cleared (the episode the higher alarm announced); 0: no chaining
    chain_s: float = 60.0
    # an extreme-rate alarm clears only once its condition has been absent this long (s): the rate going back over
    # and under the limit within it is one episode, one alarm; 0: clears at once (the rate's hysteresis alone)
    rate_episode_s: float = 60.0
    # ... unless the rate is back this far inside its limit (bpm): then the episode is over at once (a rate that
    # hovers near the limit is one episode; one that is plainly back is not kept on)
    rate_resolved_bpm: float = 15.0
    # ... and the condition absent at least this long (s): a rate back inside for a moment within a recurring
    # episode is not its end (MIT-BIH 201's bradycardia, SVDB 840's and 866's tachycardia cleared and were raised
    # again 4-10 s later, two sounds for one episode); 0 (the default): at once.  10 s took 2-3 audible alarms per
    # bed-day off DS1 and SVDB but kept two false ICU bradycardia alarms on into the CinC 2015 window (docs/alarms.md)
    rate_resolved_s: float = 0.0
    # an extreme tachycardia is plainly back (rate_resolved_bpm inside its limit) only when the rate over this many
    # beats (at least tachy_beats; its clean intervals) is too, not over its tachy_beats alone: atrial fibrillation at
    # 130-145 bpm dips under 125 over 13 beats now and then, and its alarm cleared and was raised again seconds later
    # (VFDB 423: 7 alarms in 5 minutes of one episode).  A clear comes about twice as many beats after the end as
    # before (150 -> 80 bpm: 4.5 s against 2.2; 250 -> 80: 9.0 against 4.5), and a new run within about 10 s, over a
    # rhythm still 110-124 bpm, is the same episode (no new sound).  0: over tachy_beats
    tachy_resolved_beats: int = 25
    # the pause alarm is judged on readable signal as asystole is: the VF detector's artifact windows (noise, motion,
    # an amplifier's baseline step) hold its timer too (asystole_artifact holds only asystole's)
    pause_artifact: bool = True
    # an organised rhythm is no fibrillation: a VF window over which the QRS detector found a regular rhythm no faster
    # than organised_bpm (at least organised_beats QRS, none the signal-quality index calls noisy, the coefficient of
    # variation of their RR under organised_cv) counts as not VF (a regular wide-complex rhythm whose waves look like
    # flutter to the VF model: ventricular flutter runs at about 250-350 bpm, fibrillation is irregular); 0: off
    organised_bpm: float = 180.0
    organised_beats: int = 5
    organised_cv: float = 0.1
    # the VF/flutter alarm's episode: once on, it clears after 3 windows (3 s) without VF over an organised rhythm
    # (organised_bpm's check), otherwise only after this long without a VF window (s; VFAlarm's hold_windows at the
    # detector's 1 s hop): a coarse VF's or a flutter's windows come and go, and each return was a new HIGH alarm
    # (VFDB development half: 104 raises for 31 episodes, 78 of them within 30 s of the same alarm's clearing)
    vf_episode_s: float = 10.0

    def limits_agree(self, low: float, high: float) -> bool:
        """Whether heart-rate limits ``low``/``high`` (bpm) leave the extreme rates beyond them: ``brady_bpm`` under
        ``high`` and ``tachy_bpm`` over ``low`` (else a rate is "extreme tachycardia" beside "heart rate low"; a
        newcomer, session 25).  A bed's limits over the control topic (``Monitor.set_limits``) are checked by it, the
        options (``lethal_from_args``) by :meth:`limit_checks`, which names each one broken."""
        return all(self.limit_checks(low, high))

    def limit_checks(self, low: float, high: float) -> tuple[bool, bool]:
        """The two rules of :meth:`limits_agree`, each alone: ``tachy_bpm`` over ``low``, ``brady_bpm`` under
        ``high``."""
        return low < self.tachy_bpm, self.brady_bpm < high


_VENTRICULAR = frozenset({Condition.VFIB, Condition.VTACH})

# alarm chains: each lower condition, and the higher ones that announce its episode (IEC 60601-1-8 alarm
# condition prioritisation; bedside monitors' arrhythmia alarm chains)
CHAINS: dict[Condition, frozenset[Condition]] = {
    Condition.HR_HIGH: frozenset({Condition.EXTREME_TACHY}),
    Condition.HR_LOW: frozenset({Condition.EXTREME_BRADY, Condition.ASYSTOLE}),
    Condition.PAUSE: frozenset({Condition.EXTREME_BRADY, Condition.ASYSTOLE}),
}

PRIORITY = {Condition.ASYSTOLE: Priority.HIGH, Condition.VFIB: Priority.HIGH, Condition.VTACH: Priority.HIGH,
            Condition.EXTREME_BRADY: Priority.HIGH, Condition.EXTREME_TACHY: Priority.HIGH,
            Condition.HR_LOW: Priority.MEDIUM, Condition.HR_HIGH: Priority.MEDIUM, Condition.PAUSE: Priority.MEDIUM}


@dataclass(frozen=True, slots=True)
class Change:
    """A condition raised (``active``) or cleared at sample ``index``, with what a person should read."""

    condition: Condition
    active: bool
    index: int
    message: str = ""


class LethalWatch:
    """One bed's lethal and rate conditions.  Feed it, in time order: :meth:`qrs` for every QRS as it is
    detected (its sample index, the averaged heart rate if known), :meth:`typed` for every beat once typed
    (ventricular or not), :meth:`samples` as the signal comes (how far it has come, and whether it can be read),
    :meth:`vf` for every VF window result.  Each returns the :class:`Change` list it caused.  The monitor feeds it
    through :class:`InOrder`, each input at the sample it was decided at, so that what it raises depends on the
    signal alone."""

    def __init__(self, fs: float, cfg: LethalConfig = LethalConfig()) -> None:
        self.fs, self.cfg = fs, cfg
        self.active: set[Condition] = set()
        self.last_qrs: int | None = None
        self.start: int | None = None  # first sample seen: the asystole timer runs from here before any QRS
        # RR intervals (s), each with whether it ends in a stretch the signal-quality index calls noisy (None: not
        # rated yet, in a stream's first seconds: the first rating, over those seconds, decides them)
        self.rr: deque[tuple[float, bool | None]] = deque(
            maxlen=max(cfg.tachy_beats, cfg.tachy_resolved_beats, cfg.brady_beats, cfg.vt_beats, 8))
        self.rr_unrated = False  # an interval not rated yet may be in rr (set where one enters: checked at a rating)
        self.vent: deque[bool] = deque(maxlen=cfg.vt_beats + max(0, cfg.vt_misread))
        self.similar: deque[float | None] = deque(maxlen=cfg.vt_beats + max(0, cfg.vt_misread))  # VBeat.prev_corr
        self.wide: deque[bool] = deque(maxlen=cfg.vt_beats)  # the last typed beats: very wide (vt_wide_s), or not
        self.recent: deque[bool] = deque(maxlen=max(1, cfg.vt_clear_beats))  # VT's clearing: last beats, V or not
        self.recent_art: deque[bool] = deque(maxlen=max(1, cfg.vt_clear_beats))  # ... and whether in artifact
        self.vt_met: int | None = None  # the last typed beat that ended a VT run (vt_episode_s)
        self.vt_chain = False  # the VT alarm's run goes on unbroken, typed ventricular or not (vt_sustain)
        self.vt_jumped = False  # the chain's complex changed abruptly (vt_sustain_jump) and has not come back
        self.vt_vbeats = 0  # beats typed ventricular since the VT alarm was raised (vt_sustain_beats)
        self.vt_odd = 0  # odd complexes in a row in the chain since its last beat (at most vt_odd_beats)
        self.vt_templ = False  # the chain's last beat was like the bed's template (vt_odd_beats)
        self.vt_tepoch: int | None = None  # ... the template's epoch then (VBeat.epoch)
        self.vt_jump_epoch: int | None = None  # the template's epoch at the chain's abrupt change (vt_sustain_jump)
        self.vt_abrupt = False  # the VT alarm's run began with a faster cycle than the rhythm before it (vt_turn_onset)
        # the last cycles between two typed beats in a row neither ventricular nor in artifact (vt_turn_onset)
        self.plain_cycles: deque[int] = deque(maxlen=8)
        self.prev_plain: int | None = None
        # the last two typed beats: (ventricular and not in artifact, VBeat.corr) (vt_turn)
        self.typed_last: deque[tuple[bool, float]] = deque(maxlen=2)
        # of the beats typed ventricular in a row up to the last typed beat, how many lay in artifact
        self.v_row_art = 0
        self.last_typed: int | None = None
        # the last typed beats: sample, and whether ventricular (not in artifact); and the span (first, last beat's
        # sample) of the latest VT run met: a second lead's VT confirmed by this lead's own (LeadFusion, "confirmed")
        self.typed_at: deque[tuple[int, bool]] = deque(maxlen=32)
        # ... and each one's sample, whether it lay in artifact, and its likeness to the typer's template (VBeat.corr,
        # VBeat.amp; NaN: not known): what a second lead's veto reads (LeadFusion._other_rhythm)
        self.typed_like: deque[tuple[int, bool, float, float]] = deque(maxlen=32)
        self.vt_span: tuple[int, int] | None = None
        self._vt_w = 0  # the number of typed beats in the run _vt_run last found
        self.noisy_qrs: deque[int] = deque(maxlen=64)  # the last QRS the signal-quality index called noisy
        self.qrs_at: deque[int] = deque(maxlen=32)  # the last QRS (organised rhythm; noisy ones also in noisy_qrs)
        self.typed_rr: deque[float] = deque(maxlen=max(cfg.vt_beats + max(0, cfg.vt_misread), cfg.vt_clear_beats, 2))
        self.calm = 0  # consecutive beats counting towards clearing asystole / pause
        self.saturated = False  # the latest tick's clipped verdict (samples)
        self.carried = False  # an asystole or pause taken over from the watch before a change of rate is on (carry)
        self.sat_qrs = False  # the last QRS came while it was on
        self.hr: float | None = None
        self.limit_since: dict[Condition, int] = {}
        self.inside_since: int | None = None
        self.held = False  # leads off or signal loss: asystole cannot be judged
        # where the signal last came back (its start, or the end of leads off or signal loss), and whether a QRS has
        # come since: a lead just back has not yet shown whether it has complexes (settled)
        self.back_at: int | None = None
        self.qrs_since_back = False
        self.from_loss = False  # back_at is the end of leads off or signal loss (not the stream's start)
        self.fibrillating = False  # the VF detector's last window was VF/flutter
        self.vent_until: int | None = None  # extreme rates held up to here (a ventricular rhythm was just seen)
        self.windows: deque[tuple[int, bool, bool]] = deque(maxlen=32)  # VF detector's windows: end, artifact, vf
        # a stretch without QRS of pause_s or more that a QRS ended before its pause was decided (prev, next QRS):
        # judged once the windows over it have come (_closed_pause), as it would have been had they come first
        self._gap: tuple[int, int] | None = None
        self._art_end: int | None = None  # _artifact_end() of windows, while _art_known
        self._art_known = True
        self.now: int | None = None  # how far the signal has come (samples())
        self.noisy_since: int | None = None  # first QRS of the current run of QRS in noise
        self.clean = 0  # clean QRS in a row (clearing "cannot be analysed")
        self.clean_from: int | None = None  # the first QRS of that run (reads_again)
        self.unreadable_at: int | None = None  # the last sample at which the signal could not be read (noisy QRS, ...)
        self.ended: dict[Condition, int] = {}  # sample index at which each condition last cleared (chaining)
        self.met: dict[Condition, int] = {}  # extreme rates: the last sample index at which the condition held
        self.raised: dict[Condition, int] = {}  # the sample index at which each condition was last raised
        self.bridges: list[tuple[int, int]] = []  # bridged stretches of lost samples not yet behind the last QRS

    @property
    def reads_again(self) -> bool:
        """Whether the signal has shown clean QRS in a row for ``asystole_s`` since it last could not be read (a noisy
        QRS, the asystole timer held by artifact, leads off or signal loss), ``clear_beats`` at least, from its first
        to its latest QRS (not the sample where a lost signal came back): it shows whether the heart beats,
        though "ECG cannot be analysed" stays on for ``cannot_analyse_s`` more (one alarm per episode of noise that
        comes and goes; :class:`LeadFusion` reads this for asystole and pause alone: for the rest a lead in and out
        of noise would hand a bed's alarms to and fro between its leads, CinC 2015 v243l)."""
        c = self.cfg
        return (self.clean >= c.clear_beats and self.clean_from is not None and bool(self.qrs_at)
                and self.qrs_at[-1] - self.clean_from >= round(c.asystole_s * self.fs)
                and (self.unreadable_at is None or self.clean_from > self.unreadable_at))

    @property
    def settled(self) -> bool:
        """Whether the signal has been readable long enough to say whether it has QRS complexes: back for
        ``settle_s`` without a loss since it last came back (its start, or the end of leads off or signal loss), and
        a QRS since then or ``asystole_s + asystole_wait_s`` without one (the asystole timer has run its course,
        the windows it waits for included: whatever this watch says of asystole is a verdict); or its asystole is
        on.  A lead back for less, with no QRS yet, has said nothing: :class:`LeadFusion` must not read its silence as
        "no asystole here" (a second lead missing from every tenth packet vetoed the first lead's true asystole a
        packet after each loss)."""
        if self.held:
            return False
        if Condition.ASYSTOLE in self.active:
            return True
        back = self.now - self.back_at if self.now is not None and self.back_at is not None else 0
        if back < round(self.cfg.settle_s * self.fs):
            return False
        # without a QRS: once its asystole could have been decided, windows waited for included (asystole_wait_s:
        # a lead back asystole_s without QRS, its asystole still waiting for its VF windows, vetoed the other lead's
        # and raised it a moment later: cleared and raised again at one sample, CinC f450s played at full speed;
        # a newcomer, session 25)
        return self.qrs_since_back or back >= round((self.cfg.asystole_s + self.cfg.asystole_wait_s) * self.fs)

    @property
    def off(self) -> bool:
        """Leads off or signal loss now, or back from one and not yet :attr:`settled` (a lead that loses samples in
        every packet is back between its losses for a moment each time: it is off all the while)."""
        return self.held or (self.from_loss and not self.settled)

    # ------------------------------------------------------------------ inputs

    def qrs(self, index: int, *, hr_bpm: float | None = None, noisy: bool = False, rated: bool = True) -> list[Change]:
        """A QRS detected at sample ``index`` (as soon as the detector decides it): the asystole and pause
        timers, the extreme rates and the rate limits.  ``hr_bpm``: the averaged heart rate at this beat.
        ``noisy``: the signal-quality index calls the stretch noisy (:mod:`ecgmon.segmentation.sqi`); with
        ``noisy_rates`` an interval ending there counts for no fast rate (extreme tachycardia, the high limit:
        noise and motion counted as beats raised them), slow ones still count; after ``asystole_s`` of such
        detections "ECG cannot be analysed" (technical, MEDIUM) is raised, cleared after ``clear_beats`` clean
        QRS.  ``rated``: the signal-quality index has rated the stream yet (its first rating comes about 6 s after
        the stream starts or restarts, over its first 5 s); with ``noisy_rates`` an interval ending before that
        counts for a fast rate only once the first rating calls the stretch clean (a recording or device that starts
        in motion artefact raised extreme tachycardia on its "beats" at 4 s, before any rating; a true one waits
        for the rating, a second or two at most: 13 beats over 140 bpm take 5 s)."""
        c = self.cfg
        out: list[Change] = []
        clean_qrs = rated and not noisy  # the signal-quality index has rated its stretch, and clean
        if self.carried and not self.active & {Condition.ASYSTOLE, Condition.PAUSE}:
            self.carried = False
        rr = (index - self.last_qrs) / self.fs if self.last_qrs is not None else None
        # an interval across lost samples long enough to hold a QRS they hid (over 1.5 times the median of the
        # last intervals) is no rate; a shorter one is (leaving out every interval across a gap favours the short
        # ones: a longer interval holds a gap more often)
        skip = False
        if self.bridges:
            prev = self.last_qrs
            recent = sorted(r for r, _ in list(self.rr)[-8:])
            skip = (rr is not None and rr < c.pause_s and prev is not None and bool(recent)
                    and rr > 1.5 * recent[len(recent) // 2]
                    and any(prev < b1 and index > b0 for b0, b1 in self.bridges))
            self.bridges = [b for b in self.bridges if b[1] > index]
        # an interval with a QRS in a clipped stretch (the latest tick called it clipped): the clipping hides beats
        sat = self.saturated
        skip = skip or sat or self.sat_qrs
        self.sat_qrs = sat
        if (rr is not None and rr >= min(c.pause_s, c.asystole_s) and (c.pause_artifact or c.asystole_artifact)
                and self.windows and not self.held and Condition.ASYSTOLE not in self.active):
            self._gap = (cast(int, self.last_qrs), index)
        self.last_qrs = index
        self.qrs_since_back = True
        if noisy:
            self.noisy_qrs.append(index)
        self.qrs_at.append(index)
        noisy = noisy and c.noisy_rates
        unrated = not rated and c.noisy_rates  # its interval waits for the first rating
        unsure = noisy or unrated  # no fast rate from this interval (yet)
        if rated and self.rr_unrated:  # the first rating covers the intervals before it
            self.rr = deque(((r, noisy if n is None else n) for r, n in self.rr), maxlen=self.rr.maxlen)
            self.rr_unrated = False
        if noisy:
            self.clean = 0
            self.unreadable_at = index
            if self.noisy_since is None:
                self.noisy_since = index
            # not under asystole or VF/flutter (they say more, and their watch clears it at every chunk: raised at
            # each noisy QRS it flickered, MIT-BIH 207: 281 times in its flutter), nor while leads off holds it
            if (index - self.noisy_since >= round(c.asystole_s * self.fs) and not self.held
                    and not self.active & {Condition.ASYSTOLE, Condition.VFIB}):
                out += self._set(Condition.CANNOT_ANALYSE, True, index,
                                 f"noise for {c.asystole_s:g} s")
        else:
            self.noisy_since = None
            if self.clean == 0 or self.clean_from is None:
                self.clean_from = index
            self.clean += 1
            # the signal can be read again: clear_beats clean QRS, and readable for cannot_analyse_s (its episode)
            if self.clean >= c.clear_beats and (self.unreadable_at is None or index - self.unreadable_at
                                                >= round(c.cannot_analyse_s * self.fs)):
                out += self._set(Condition.CANNOT_ANALYSE, False, index, f"{self.clean} clean QRS in a row")
        gap_s = c.asystole_s if c.rate_gap_s is None else c.rate_gap_s
        if rr is not None and rr >= gap_s:
            # no QRS for as long as asystole takes: that interval is the asystole alarm's (raised, or held because
            # the signal could not be read), not a heart rate; the extreme rates count from the beats after it
            self.rr.clear()
        elif rr is not None and rr > 0 and not skip:
            self.rr.append((rr, None if unrated else noisy))
            self.rr_unrated = self.rr_unrated or unrated
        # asystole and pause clear once beats come back at a rate a heart can keep
        if rr is not None and rr < c.pause_s:
            # an asystole carried over a change of rate (carry) ends only at clean QRS: the restarted detector's first
            # detections in low-level noise are not the heart (an asystole in 20-50 uV of noise was cleared 3.5 s
            # after the change)
            if not skip and (not self.carried or clean_qrs):
                self.calm += 1
                if self.calm >= c.clear_beats:
                    again = f"QRS again ({self.calm} in a row)"
                    out += self._set(Condition.ASYSTOLE, False, index, again)
                    out += self._set(Condition.PAUSE, False, index, again)
        else:
            self.calm = 0
        rrs = [r for r, _ in self.rr]
        clean = [n is False for _, n in self.rr]  # rated, not in noise (all, without noisy_rates)
        # the rate over the last N beats (N RR intervals), as monitors average it: an irregular rhythm (atrial
        # fibrillation at 150) is over 140 although some of its intervals are not
        # N consecutive beats span N - 1 intervals
        nb, nt = max(1, c.brady_beats - 1), max(1, c.tachy_beats - 1)
        brady = 60.0 * nb / sum(rrs[-nb:]) if len(rrs) >= nb else None
        # noise adds detections: a fast rate over intervals in noise is no tachycardia (a slow one still counts:
        # beats missed in noise, or a true bradycardia whose P waves split the detectors, CinC b562s)
        tachy = 60.0 * nt / sum(rrs[-nt:]) if len(rrs) >= nt and all(clean[-nt:]) else None
        # the extreme rates are not raised while the signal fibrillates or a ventricular rhythm's alarm is on (and
        # for hold_s after): the detections are then not beats, or a higher alarm says more.  (Holding them on the
        # VF detector's artifact windows too cost true ICU alarms: it calls much of the Challenge's signal noisy.)
        if self.fibrillating or self.active & _VENTRICULAR:
            self.vent_until = index + round(c.hold_s * self.fs)
        hold = self.vent_until is not None and index < self.vent_until
        if brady is not None and brady < c.brady_bpm and not hold:
            self.met[Condition.EXTREME_BRADY] = index
            out += self._set(Condition.EXTREME_BRADY, True, index,
                             f"heart rate {_bpm(brady, c.brady_bpm)} bpm over {c.brady_beats} beats, "
                             f"under {c.brady_bpm:g}")
        elif (brady is not None and brady >= c.brady_bpm + 5
              and self._episode_over(Condition.EXTREME_BRADY, index,
                                     brady >= c.brady_bpm + c.rate_resolved_bpm and all(clean[-nb:]))):
            out += self._set(Condition.EXTREME_BRADY, False, index,
                             f"heart rate {brady:.0f} bpm over {c.brady_beats} beats")
        if tachy is not None and tachy > c.tachy_bpm and not hold and not (
                c.tachy_held_unanalysable and Condition.CANNOT_ANALYSE in self.active):
            self.met[Condition.EXTREME_TACHY] = index
            out += self._set(Condition.EXTREME_TACHY, True, index,
                             f"heart rate {_bpm(tachy, c.tachy_bpm)} bpm over {c.tachy_beats} beats, "
                             f"over {c.tachy_bpm:g}")
        elif Condition.EXTREME_TACHY in self.active and (back := self._tachy_back(tachy, rrs, clean, nt)) is not None \
                and back <= c.tachy_bpm - 10 \
                and self._episode_over(Condition.EXTREME_TACHY, index, tachy is not None
                                       and back <= c.tachy_bpm - c.rate_resolved_bpm
                                       and self._long_rate(rrs, clean) <= c.tachy_bpm - c.rate_resolved_bpm):
            out += self._set(Condition.EXTREME_TACHY, False, index,
                             f"heart rate {back:.0f} bpm over {c.tachy_beats} beats")
        if hr_bpm is None and len(rrs) >= 2:
            last = rrs[-8:]
            hr_bpm = 60.0 * len(last) / sum(last)
        self.hr = hr_bpm
        if hold:  # the rate limits are held as the extreme rates are: the detections are fibrillatory waves
            self.limit_since.clear()
        else:
            out += self._limits(index, high=not unsure)
        return out

    def typed(self, index: int, *, ventricular: bool, artifact: bool = False,
              p_ventricular: float | None = None, prev_corr: float | None = None,
              width_s: float | None = None, corr: float | None = None,
              prev2_corr: float | None = None, epoch: int | None = None, amp: float | None = None) -> list[Change]:
        """The beat at sample ``index`` typed (:class:`ecgmon.segmentation.vtype.VTyper`: a little after its
        QRS): ventricular tachycardia.  ``artifact``: the signal around it is noise (VT is not judged on it); with
        ``vt_noisy`` so is a beat whose QRS :meth:`qrs` was told is noisy.
        ``p_ventricular``: the typer's probability; with ``vt_p`` set, the VT rule counts the beat ventricular
        when it is at least ``vt_p`` (else ``ventricular``).  ``prev_corr``: the beat's QRS correlation with the
        previous typed beat's (:attr:`VBeat.prev_corr`; None: not known, the run is not judged on it).
        ``width_s``: its QRS's slope-energy width (:attr:`VBeat.width_s`; None: not known): a run of very wide,
        regular, alike complexes is VT whatever the typer says (``vt_wide_s``).  ``corr``: its QRS's correlation with
        the bed's template (:attr:`VBeat.corr`; None or NaN: no template yet): after an abrupt change of complex, a
        sustained VT's chain holds only beats like it (``vt_sustain_corr``, ``vt_sustain_jump``).  ``prev2_corr``: its
        QRS correlation with the typed beat before the previous one (:attr:`VBeat.prev2_corr`): the chain across one
        odd complex (``vt_odd_beats``) and the template's turn (``vt_turn``).  ``epoch``: the template's morphology
        epoch (:attr:`VBeat.epoch`; None: not known, taken as unchanged): "like the template" holds the chain only
        while the template is the complex the chain's beats were like.  ``amp``: the log ratio of its QRS's
        peak-to-peak amplitude to the template's (:attr:`VBeat.amp`; None or NaN: not known): with ``corr`` what a
        second lead's veto reads (:meth:`LeadFusion._other_rhythm`)."""
        c = self.cfg
        if c.vt_p is not None and p_ventricular is not None:
            ventricular = p_ventricular >= c.vt_p
        if c.vt_noisy and index in self.noisy_qrs:
            artifact = True
        out: list[Change] = []
        rr = (index - self.last_typed) / self.fs if self.last_typed is not None else None
        self.last_typed = index
        if rr is not None and rr > 0:
            self.typed_rr.append(rr)
        self.vent.append(ventricular and not artifact)
        self.typed_at.append((index, ventricular and not artifact))
        self.typed_like.append((index, artifact, math.nan if corr is None else float(corr),
                                math.nan if amp is None else float(amp)))
        self.similar.append(prev_corr)
        self.wide.append(c.vt_wide_s is not None and width_s is not None and width_s >= c.vt_wide_s and not artifact)
        wide_rate = self._wide_run()
        if wide_rate is not None:  # one of a run of very wide complexes: ventricular, whatever the bed's template
            ventricular = True
            self.vent[-1] = True
            self.typed_at[-1] = (index, True)
        self.v_row_art = self.v_row_art + artifact if ventricular else 0
        before = list(self.typed_last)  # the two typed beats before this one (vt_turn)
        plain = not ventricular and not artifact  # (the cycles of the rhythm a VT's onset is judged against)
        if plain and self.prev_plain is not None:
            self.plain_cycles.append(index - self.prev_plain)
        self.prev_plain = index if plain else None
        self.typed_last.append((ventricular and not artifact, math.nan if corr is None else float(corr)))
        # a beat not typed ventricular that goes on with the VT alarm's run (vt_sustain): one of the run
        goes_on = False
        if ventricular and not artifact and Condition.VTACH in self.active:
            self.vt_vbeats += 1
            self.vt_odd = 0  # a beat of the run
        if (self.vt_chain and not ventricular and not artifact and self.vt_vbeats < c.vt_sustain_beats
                and Condition.VTACH in self.active and self.vt_abrupt
                and self._turned(before, prev_corr, prev2_corr, corr)):
            self.vt_vbeats = c.vt_sustain_beats  # the template is the run's complex now: the chain holds
        if self.vt_chain and not ventricular and not artifact and self.vt_vbeats >= c.vt_sustain_beats:
            fast = Condition.VTACH in self.active and self._fast(c.vt_beats)
            like = (c.vt_sustain_corr is not None and corr is not None and not math.isnan(corr)
                    and abs(corr) >= c.vt_sustain_corr)  # like the bed's template (or its mirror)
            # alike the run's last beat: the previous one, or across one odd complex the one before it, or across
            # several the template where the run's beats were like it (the template is the VT's complex then)
            pc = prev_corr if not self.vt_odd else prev2_corr if self.vt_odd == 1 else None
            # (the template the same complex as then: its epoch unchanged, VBeat.epoch; None: not told)
            same = epoch is None or epoch == self.vt_tepoch
            goes_on = fast and ((pc is not None and pc >= c.vt_similar)
                                or (self.vt_odd > 0 and like and self.vt_templ and same))
            if (not goes_on and self.vt_odd < c.vt_odd_beats and fast and prev_corr is not None
                    and sum(self.recent) >= c.vt_odd_share * len(self.recent)):
                self.vt_odd += 1  # an odd complex: neither one of the run nor the chain's end
            else:
                self.vt_chain = goes_on
                self.vt_odd = 0
            if goes_on and c.vt_sustain_corr is not None and corr is not None and not math.isnan(corr):
                # after an abrupt change of complex (a beat less like the one before than vt_sustain_jump), beats
                # unlike the VT's template (nor its mirror) neither go on with the run nor break it, until one like it
                # comes back
                # comes back (the template then what it was at the change: a template that turned back to the rhythm
                # after the VT, a narrow sinus tachycardia's, is no VT's complex coming back; a reviewer's VT of 11
                # beats 8 s after a bed's first beat, then sinus at 120 bpm: held 60 s; session 47)
                if pc is not None and pc < c.vt_sustain_jump and not self.vt_jumped:
                    self.vt_jumped, self.vt_jump_epoch = True, epoch
                back = like and (epoch is None or epoch == self.vt_jump_epoch)  # the VT's complex back
                if self.vt_jumped and not (pc is not None and pc < c.vt_sustain_jump) and back:
                    self.vt_jumped = False
                self.vt_templ, self.vt_tepoch = like, epoch
                if self.vt_jumped and not back:
                    goes_on = False
        # a beat in noise holds VT (vt_artifact_holds: 8 clean beats not ventricular are needed after it) or counts
        # towards clearing it (as monitors suspend arrhythmia alarms while they 'cannot analyse' the ECG)
        held = goes_on or (c.vt_wide_holds and Condition.VTACH in self.active and self.wide[-1]
                           and self._fast(c.vt_beats - 1)
                           and prev_corr is not None and prev_corr >= c.vt_wide_similar and self._regular_last())
        artifact_holds = artifact and not (c.vt_artifact_slow and self._slow_regular())
        self.recent.append((ventricular or artifact_holds or held) if c.vt_artifact_holds
                           else ((ventricular or held) and not artifact))
        self.recent_art.append(artifact)
        # VF/flutter outranks VT: while its alarm is on, the "beats" typed are fibrillatory waves, and a VT alarm
        # raised and cleared under it would sound again and again (record 207's flutter: 10 times)
        rate = self._vt_run()
        wide_only = rate is None and wide_rate is not None
        if wide_only:
            rate, self._vt_w = wide_rate, c.vt_beats
        if rate is not None or goes_on:
            self.vt_met = index
        if rate is not None:  # the latest VT run met: its first and last QRS
            self.vt_span = (self.typed_at[-min(self._vt_w, len(self.typed_at))][0], index)
        if rate is not None:
            self.vt_chain = c.vt_sustain
            self.vt_jumped = False
            self.vt_odd = 0
        if rate is not None and Condition.VFIB not in self.active and not (
                c.vt_held_unanalysable and Condition.CANNOT_ANALYSE in self.active):
            raised = self._set(Condition.VTACH, True, index,
                               f"{c.vt_beats} or more very wide complexes in a row at {rate:.0f} bpm" if wide_only
                               else f"{c.vt_beats} or more ventricular beats at {rate:.0f} bpm")
            if raised:
                # the run that raised it, and the beats typed ventricular in artifact just before and within it: the
                # typer's template turns about 24 beats after a VT's onset, not after its alarm, and a VT whose
                # first beats lay in artifact is raised late (its chain would end a few beats after the turn)
                self.vt_vbeats = c.vt_beats + self.v_row_art
                self.vt_templ = False
                self.vt_abrupt = self._abrupt()
            out += raised
        elif Condition.VTACH in self.active and len(self.recent) == self.recent.maxlen:
            rrs = list(self.typed_rr)[-(len(self.recent) - 1):] if c.vt_clear_bpm > 0 else []
            over = (c.vt_episode_s > 0 and self.vt_met is not None and not any(self.recent_art)
                    and index - self.vt_met >= c.vt_episode_s * self.fs)
            few = sum(self.recent) < c.vt_clear_share * len(self.recent)
            slow = len(rrs) == len(self.recent) - 1 and 60.0 * len(rrs) / sum(rrs) <= c.vt_clear_bpm
            if few or over or slow:
                why = (f"{sum(self.recent)} of the last {len(self.recent)} beats ventricular" if few else
                       f"rate {60.0 * len(rrs) / sum(rrs):.0f} bpm" if slow else
                       f"no ventricular run for {c.vt_episode_s:g} s")
                out += self._set(Condition.VTACH, False, index, why)
                self.vt_chain = False
        return out

    def _abrupt(self) -> bool:
        """Whether the VT run ending at the last typed beat (its last ``vt_beats``) began abruptly: its mean cycle at
        least ``vt_turn_onset`` shorter than the median of the rhythm's last (up to 8) cycles between two beats neither
        typed ventricular nor in artifact, 4 of them at least known (``vt_turn``): beats in noise at a VT's onset
        are no rhythm to judge it against."""
        c = self.cfg
        idx = [i for i, _ in self.typed_at]
        n = c.vt_beats
        if len(idx) < n or len(self.plain_cycles) < 4:
            return False
        run = idx[-n:]
        return (run[-1] - run[0]) / (n - 1) <= (1.0 - c.vt_turn_onset) * float(np.median(self.plain_cycles))

    def _turned(self, before: list[tuple[bool, float]], prev_corr: float | None, prev2_corr: float | None,
                corr: float | None) -> bool:
        """Whether the typer's template has turned to the VT run's complex at a beat not typed ventricular
        (``vt_turn``): the beat like the template (``corr`` at least ``vt_sustain_corr``) and alike the run's last
        beat typed ventricular (the previous beat, ``prev_corr``, or the one before it across one odd complex,
        ``prev2_corr``, at least ``vt_turn_similar``), which was like the template by ``vt_turn`` less.  ``before``:
        the two typed beats before this one, (ventricular and not in artifact, their ``corr``)."""
        c = self.cfg
        if c.vt_turn is None or c.vt_sustain_corr is None or corr is None or math.isnan(corr) \
                or corr < c.vt_sustain_corr:
            return False
        for back, sim in ((1, prev_corr), (2, prev2_corr)):
            if len(before) < back or sim is None or math.isnan(sim):
                continue
            was_v, was_corr = before[-back]
            if was_v and sim >= c.vt_turn_similar and not math.isnan(was_corr) and corr - was_corr >= c.vt_turn:
                return True
        return False

    def _regular_last(self) -> bool:
        """Whether the last typed interval is within ``vt_wide_regular`` of the median of the last ``vt_beats - 1``."""
        rrs = list(self.typed_rr)[-(self.cfg.vt_beats - 1):]
        if not rrs:
            return False
        med = sorted(rrs)[len(rrs) // 2]
        return abs(rrs[-1] - med) <= self.cfg.vt_wide_regular * med

    def _slow_regular(self) -> bool:
        """Whether each of the last ``vt_clear_beats - 1`` typed intervals (all known) is at or under ``vt_bpm`` and
        within ``vt_wide_regular`` of their median: a slow regular rhythm, no VT."""
        c = self.cfg
        n = max(1, c.vt_clear_beats - 1)
        rrs = list(self.typed_rr)[-n:]
        return len(rrs) == n and all(r >= 60.0 / c.vt_bpm for r in rrs) and self._regular(rrs, c.vt_wide_regular)

    @staticmethod
    def _regular(rrs: list[float], share: float) -> bool:
        """Whether each of ``rrs`` (not empty) is within ``share`` of their median (the upper one of an even count)."""
        med = sorted(rrs)[len(rrs) // 2]
        return all(abs(r - med) <= share * med for r in rrs)

    def _fast(self, intervals: int) -> bool:
        """Whether the mean rate over the last ``intervals`` typed intervals (fewer where fewer are known, none:
        False) is over ``vt_bpm``."""
        rrs = list(self.typed_rr)[-intervals:]
        return len(rrs) > 0 and 60.0 * len(rrs) / sum(rrs) > self.cfg.vt_bpm

    def _wide_run(self) -> float | None:
        """The rate (bpm) of a run of very wide complexes ending at the last typed beat (``vt_wide_s``), or None: the
        last ``vt_beats`` typed beats all wide, their intervals within ``vt_wide_regular`` of their median and
        averaging over ``vt_bpm``, each QRS correlating ``vt_wide_similar`` or more with the one before."""
        c, n = self.cfg, self.cfg.vt_beats
        if c.vt_wide_s is None or len(self.wide) < n or not all(list(self.wide)[-n:]) or len(self.typed_rr) < n - 1:
            return None
        run = list(self.typed_rr)[-(n - 1):]
        if not self._regular(run, c.vt_wide_regular):
            return None
        if any(s is None or not s >= c.vt_wide_similar for s in list(self.similar)[-(n - 1):]):
            return None
        rate = 60.0 * len(run) / sum(run)
        return rate if rate > c.vt_bpm else None

    def _vt_run(self) -> float | None:
        """The rate (bpm) of a VT run ending at the last typed beat, or None: the last ``w`` typed beats (``vt_beats``
        <= w <= ``vt_beats + vt_misread``) begin and end with a ventricular beat, hold ``vt_beats`` ventricular
        beats (beats in artifact are not), and their ``w - 1`` intervals average over ``vt_bpm`` (with a beat not
        ventricular among them, each interval within ``vt_misread_rr`` of their median), and the median
        correlation of each of the run's QRS with the one before is at least ``vt_similar``."""
        c = self.cfg
        flags, rrs = list(self.vent), list(self.typed_rr)
        if not flags or not flags[-1]:
            return None
        for w in range(c.vt_beats, c.vt_beats + max(0, c.vt_misread) + 1):
            if len(flags) < w or len(rrs) < w - 1 or not flags[-w] or sum(flags[-w:]) < c.vt_beats:
                continue
            run = rrs[-(w - 1):] if w > 1 else []
            if run and w > c.vt_beats and not self._regular(run, c.vt_misread_rr):
                continue
            if run and c.vt_regular > 0 and not self._regular(run, c.vt_regular):
                continue
            if not alike(list(self.similar)[-(w - 1):], c.vt_similar):
                continue
            if run and 60.0 * len(run) / sum(run) > c.vt_bpm:
                self._vt_w = w
                return 60.0 * len(run) / sum(run)
        return None

    def ventricular_run(self, lo: int, hi: int) -> int:
        """The longest run of consecutive beats typed ventricular (not in artifact) among this lead's last 32 typed
        beats that has a QRS at samples ``lo`` .. ``hi`` (all its beats counted, also those outside): 0 when none."""
        best = cur = 0
        inside = False
        for index, v in self.typed_at:
            if not v:
                cur, inside = 0, False
                continue
            cur += 1
            inside = inside or lo <= index <= hi
            if inside:
                best = max(best, cur)
        return best

    def quiet_since(self, index: int, beats: int) -> bool:
        """Whether this lead typed ``beats`` beats after sample ``index``, the last ``beats`` of them all not
        ventricular."""
        after = [v for i, v in self.typed_at if i > index]
        return len(after) >= beats and not any(after[-beats:])

    def beat(self, index: int, *, ventricular: bool = False, hr_bpm: float | None = None,
             artifact: bool = False) -> list[Change]:
        """:meth:`qrs` and :meth:`typed` of one beat at once (a caller that types beats as they are found)."""
        return self.qrs(index, hr_bpm=hr_bpm) + self.typed(index, ventricular=ventricular, artifact=artifact)

    def samples(self, end: int, *, leads_off: bool = False, signal_loss: bool = False,
                saturated: bool = False) -> list[Change]:
        """The bed's signal has come up to sample ``end`` (exclusive); ``leads_off``/``signal_loss``: it cannot
        be read now (a technical condition, raised elsewhere), which holds the asystole timer.  ``saturated``: the
        quality check's clipped verdict over the window ending at ``end`` (``saturated_artifact``)."""
        c = self.cfg
        self.saturated = saturated and c.saturated_artifact
        if self.start is None:
            self.start = end
            if self.back_at is None:
                self.back_at = end
        out: list[Change] = []
        if signal_loss:
            self.gap()
            return out
        if leads_off:
            self.held = True
            self.qrs_since_back = False
            self.clean_from = None  # clean QRS count again from the first after it (reads_again)
            return out
        if self.held:  # the signal is back: time without QRS counts from here
            self.held = False
            self.last_qrs = max(self.last_qrs or 0, end)
            self.start = self.back_at = end
            self.from_loss = True
        since = self.last_qrs if self.last_qrs is not None else self.start
        if (end - since) / self.fs >= c.pause_s:
            self.calm = 0
            if not c.pause_artifact:  # decided on the samples alone, at once (a QRS that ends it later is no help)
                out += self._set(Condition.PAUSE, True, since + round(c.pause_s * self.fs),
                                 f"no QRS for {c.pause_s:g} s")
        self.now = end
        return out + self._asystole()

    def _asystole(self) -> list[Change]:
        """Asystole once ``asystole_s`` of readable signal has passed without a QRS, unless the signal
        fibrillates.  With ``asystole_artifact`` a VF-detector window called artifact (noise, electrode motion,
        an amplifier's baseline step) holds the timer as leads off does: the time without QRS counts from the
        end of the last such window.  It waits for a window that covers the stretch, at most ``asystole_wait_s``
        (a watch never fed VF windows decides on the QRS alone); raised at the sample where it is decided."""
        c, fs = self.cfg, self.fs
        if self.now is None:
            return []
        pre = self._closed_pause() if self._gap is not None else []
        if pre:
            return pre + self._asystole()
        if self.held or Condition.ASYSTOLE in self.active or (Condition.VFIB in self.active and self.fibrillating):
            # leads off or signal loss says why (its own technical alarm), a lethal alarm says more; a VF/flutter
            # alarm held over windows that no longer fibrillate (its episode, vf_episode_s) does not hold asystole
            return self._set(Condition.CANNOT_ANALYSE, False, self.now,
                             "leads off or signal loss" if self.held else "a lethal alarm is on")
        vf_held = Condition.VFIB in self.active
        since = self.last_qrs if self.last_qrs is not None else self.start
        if since is None:
            return []
        use = c.asystole_artifact and bool(self.windows)
        out: list[Change] = []
        by_qrs = since + round(c.asystole_s * fs)  # when asystole is due by the QRS alone
        if use:
            art = self._artifact_end()
            if art is not None and art > since:
                since = art
        if c.pause_artifact:
            out += self._pause(since, use)
        due = since + round(c.asystole_s * fs)
        if self.now < due:
            if self.now >= by_qrs and not self.fibrillating and not vf_held:
                # asystole_s without a QRS, but artifact over it holds the alarm: say that it is held (a monitor's
                # "cannot analyse ECG"), so that a patient without beats in noise is not left silent
                self.unreadable_at = self.now
                out += self._set(Condition.CANNOT_ANALYSE, True, self.now,
                                 f"no QRS for {c.asystole_s:g} s in it")
            return out
        # held while the signal fibrillates, judged when the condition was met (the last window by then) and now:
        # a window that looks fibrillatory only after the 4 s (a flat line's noise can) is VF's to call (it needs
        # two such windows and raises its own alarm), and a clean window ends the hold
        if self.fibrillating and next((v for e, _, v in reversed(self.windows) if e <= due), True):
            return out
        at = due
        if use:
            last = self.windows[-1][0]
            if last < due and self.now < due + round(c.asystole_wait_s * fs):
                return out  # the windows over the stretch are still being analysed
            at = min(last, self.now) if last >= due else self.now
        # asystole says more than "cannot be analysed" (and is HIGH): the technical alarm ends where it is raised;
        # a VF/flutter alarm still held ends there too (the fibrillation has become asystole)
        return (out + self._set(Condition.CANNOT_ANALYSE, False, at, "asystole")
                + self._set(Condition.VFIB, False, at, "asystole")
                + self._set(Condition.ASYSTOLE, True, at, f"no QRS for {c.asystole_s:g} s"))

    def _artifact_end(self) -> int | None:
        """The latest end of the artifact windows among the last ``windows`` (None: none), found once per window
        (the asystole timer asks at every chunk)."""
        if not self._art_known:
            self._art_end = max((e for e, a, _ in self.windows if a), default=None)
            self._art_known = True
        return self._art_end

    def _pause(self, since: int, use: bool) -> list[Change]:
        """Pause once ``pause_s`` of readable signal has passed without a QRS (``since``: the last QRS, or the end
        of the last artifact window after it, as for asystole), decided once a VF window covers it (at most
        ``asystole_wait_s`` later; at once for a watch never fed VF windows)."""
        c = self.cfg
        due = since + round(c.pause_s * self.fs)
        if self.now is None or self.now < due + round(c.pause_wait_s * self.fs) or Condition.PAUSE in self.active:
            return []
        if use and self.windows[-1][0] < due and self.now < due + round(c.asystole_wait_s * self.fs):
            return []  # the windows over the stretch are still being analysed
        return self._set(Condition.PAUSE, True, due, f"no QRS for {c.pause_s:g} s")

    def _closed_pause(self) -> list[Change]:
        """A pause (and an asystole) that a QRS ended before the VF windows over it were analysed, judged as
        :meth:`_pause` and :meth:`_asystole` would have judged them had the windows come first: window by window in
        order, the timer counting from the previous QRS or the end of the last artifact window so far, until a window
        reaches the time the condition was due.  Without this the condition was raised or not by whether the closing
        QRS or the covering window came first, which depends on when the bed's work is flushed (MIT-BIH 201 at
        sample 7572: a pause raised in one rhythm-block phase only).  Raised at the sample where it was due (asystole:
        at its covering window's end, as :meth:`_asystole` raises it, at most at the closing QRS)."""
        c = self.cfg
        prev, nxt = cast(tuple[int, int], self._gap)
        # without pause_artifact the pause was decided on the samples alone, before the closing QRS could come
        pause = self._gap_due(prev, nxt, c.pause_s) if c.pause_artifact else False
        asystole = self._gap_due(prev, nxt, c.asystole_s) if c.asystole_artifact else False
        if pause is None or asystole is None:
            return []  # the windows over it are still being analysed
        self._gap = None
        out: list[Change] = []
        if self.held or Condition.ASYSTOLE in self.active:
            return out
        if isinstance(pause, tuple) and Condition.PAUSE not in self.active:
            out += self._set(Condition.PAUSE, True, pause[0], f"no QRS for {c.pause_s:g} s")
        if isinstance(asystole, tuple):
            due, cover = asystole
            # held where the signal fibrillated (the last window by then), as _asystole holds it
            if not next((v for e, _, v in reversed(self.windows) if e <= due), False):
                out += self._set(Condition.ASYSTOLE, True, min(cover, nxt), f"no QRS for {c.asystole_s:g} s")
        return out

    def _gap_due(self, prev: int, nxt: int, seconds: float) -> tuple[int, int] | bool | None:
        """Whether ``seconds`` of readable signal without QRS passed between the QRS at ``prev`` and at ``nxt``:
        (the sample where it was due, the end of the window that covers it), False (it fell short: artifact
        windows held the timer), or None (no window covers it yet, and ``asystole_wait_s`` has not passed)."""
        since, n = prev, round(seconds * self.fs)
        for end, artifact, _ in self.windows:
            if end <= prev:
                continue
            if artifact and end > since:
                since = end
            if since + n >= nxt:
                return False
            if end >= since + n:
                return since + n, end
        if since + n >= nxt:
            return False
        if cast(int, self.now) < since + n + round(self.cfg.asystole_wait_s * self.fs):
            return None
        return since + n, cast(int, self.now)

    def bridge(self, start: int, stop: int) -> None:
        """Samples ``[start, stop)`` were lost in transit and bridged (a short run: the stream goes on): an
        interval across them over 1.5 times the median RR (a QRS was lost in it) counts for no rate, while the
        pause and asystole timers run on through them (the signal there is unknown: a stretch without QRS that it
        ends or lengthens is judged as one without, erring towards the alarm)."""
        self.bridges.append((start, stop))

    def gap(self) -> None:
        """The bed's signal was lost (a gap in the stream, missing samples): nothing before the gap counts
        towards the next beat's rate or the asystole timer, which runs again from the first sample after it."""
        self.last_qrs, self.last_typed, self.start = None, None, None
        self.qrs_since_back = False
        self.clean_from = None  # clean QRS count again from the first after the gap (reads_again)
        self._gap = None
        self.bridges = []
        self.rr.clear()
        self.typed_rr.clear()
        self.vent.clear()
        self.typed_at.clear()
        self.typed_like.clear()
        self.vt_span = None
        self.similar.clear()
        self.wide.clear()
        # the typer starts again after a gap (a new VTyper: its template epochs count from 0 again), and no cycle
        # of the rhythm spans the gap
        self.typed_last.clear()
        self.plain_cycles.clear()
        self.prev_plain = None
        self.vt_templ, self.vt_tepoch, self.vt_jump_epoch = False, None, None
        self.calm = 0
        self.held = True

    def vf(self, end: int, change: str | None, *, vf: bool = False, artifact: bool = False) -> list[Change]:
        """The VF alarm's transition at the window ending at sample ``end`` (``"raise"``, ``"clear"``, None), and
        whether that window was fibrillatory or flutter waveform (``vf``), which holds the extreme rates and
        asystole, or artifact (``artifact``: noise, electrode motion), which holds asystole when most windows over
        the stretch without QRS are."""
        self.fibrillating = vf
        self.windows.append((end, artifact, vf))
        self._art_known = False  # the latest end of an artifact window among them: to be found again
        if change == "raise":
            return (self._set(Condition.CANNOT_ANALYSE, False, end,
                                         "the signal reads as fibrillation or flutter, not noise")
                    + self._set(Condition.VFIB, True, end, "fibrillatory or flutter waveform for 4 s or more"))
        if change == "clear":
            return self._set(Condition.VFIB, False, end, "no fibrillatory or flutter waveform")
        return self._asystole()

    def carry(self, old: LethalWatch, at: int) -> None:
        """Take over the conditions of ``old``, the watch of the same lead before its stream restarted at another
        rate (its samples renumbered from sample ``at``): they stay on, raised and last met at ``at``, for this watch's
        own judgement to clear (a true asystole, VF or bradycardia goes on across a device's change of rate).  Ending
        them there cost a VF 5-6 s of alarm and an asystole in 20-50 uV of noise for good (a reviewer, session 39);
        leaving them with no watch kept an extreme bradycardia on for good over a true 72 bpm (a fuzzer, session
        38)."""
        self.active = set(old.active)
        self.carried = bool(self.active & {Condition.ASYSTOLE, Condition.PAUSE})
        self.raised = {c: at for c in self.active}
        self.met = {c: at for c in old.met if c in self.active}
        self.fibrillating = old.fibrillating

    def organised(self, start: int, end: int, beats: int | None = None) -> bool:
        """Whether the QRS found in ``[start, end]`` (sample indices: a VF window) are an organised rhythm: at least
        ``beats`` (default ``organised_beats``), none in noise, regular (coefficient of variation of their RR under
        ``organised_cv``) and no faster than ``organised_bpm``.  By default a slower rhythm, which cannot put
        ``organised_beats`` QRS in the span (3.5 s holds 4 at 80 bpm, 3 at 60), needs as many as its own mean RR
        puts there (at least 3), and they must cover the span: none of its ends farther than 1.5 mean RR from a
        QRS (a clean 80 bpm rhythm with T waves as tall as its QRS, whose windows the VF model took for flutter,
        raised VF/flutter and held it to the end: a newcomer's EC13-style test, session 26)."""
        c = self.cfg
        if c.organised_bpm <= 0:
            return False
        need = c.organised_beats if beats is None else beats
        q = [i for i in self.qrs_at if start <= i <= end]
        if len(q) < min(3, need) or any(i in self.noisy_qrs for i in q):
            return False
        rr = np.diff(q) / self.fs
        mean = float(rr.mean())
        if len(q) < need:
            if beats is not None:
                return False
            # a slow rhythm: as many as it fits, over the whole span
            fits = int((end - start) / self.fs / mean)
            reach = 1.5 * mean * self.fs
            if len(q) < min(need, max(3, fits)) or q[0] - start > reach or end - q[-1] > reach:
                return False
        return mean >= 60.0 / c.organised_bpm and float(rr.std()) < c.organised_cv * mean

    def set_limits(self, *, low: float | None = None, high: float | None = None) -> None:
        """Change the bed's heart-rate limits (bpm); they take effect from the next beat."""
        self.cfg = replace(self.cfg, hr_low=self.cfg.hr_low if low is None else low,
                           hr_high=self.cfg.hr_high if high is None else high)

    # ------------------------------------------------------------------ state

    def _limits(self, index: int, *, high: bool = True) -> list[Change]:
        """The rate limits at this beat; ``high`` False: the high limit is not judged (a rate in noise)."""
        c, hr = self.cfg, self.hr
        out: list[Change] = []
        if hr is None:
            return out
        need = round(c.limit_s * self.fs)
        checks = [(Condition.HR_LOW, hr < c.hr_low, hr >= c.hr_low + 5)]
        if high:
            checks.append((Condition.HR_HIGH, hr > c.hr_high, hr <= c.hr_high - 5))
        for cond, beyond, inside in checks:
            if beyond:
                since = self.limit_since.setdefault(cond, index)
                if index - since >= need:
                    word = "under" if cond is Condition.HR_LOW else "over"
                    limit = c.hr_low if cond is Condition.HR_LOW else c.hr_high
                    out += self._set(cond, True, index, f"heart rate {_bpm(hr, limit)} bpm, {word} the limit {limit:g}")
            else:
                self.limit_since.pop(cond, None)
            if cond in self.active:
                if inside:
                    self.inside_since = index if self.inside_since is None else self.inside_since
                    if index - self.inside_since >= need:
                        out += self._set(cond, False, index, f"heart rate {hr:.0f} bpm")
                        self.inside_since = None
                else:
                    self.inside_since = None
        return out

    def _tachy_back(self, tachy: float | None, rrs: list[float], clean: list[bool], nt: int) -> float | None:
        """The rate (bpm) an extreme tachycardia's clearing reads: the ``nt``-interval rate when all of them are
        clean, else, while the ECG can be analysed, the rate over the clean ones among them when at least half are;
        such a rate ends the alarm's episode only (``rate_episode_s`` without the condition), never as "plainly
        back" at once.  A noisy QRS every few beats after the return left no rate to clear on before, and the HIGH
        alarm on for good (a newcomer, session 29); cleared at once on the clean intervals between noisy ones, VFDB
        423's atrial fibrillation in the first lead's noise was raised again twice, NSTDB 118e00's noise once.  While
        "ECG cannot be analysed" is on, they are no rhythm at all (beats missed in the noise).  None: no rate."""
        if tachy is not None or len(rrs) < nt or Condition.CANNOT_ANALYSE in self.active:
            return tachy
        kept = [r for r, ok in zip(rrs[-nt:], clean[-nt:], strict=True) if ok]
        return 60.0 * len(kept) / sum(kept) if 2 * len(kept) >= nt else None

    def _long_rate(self, rrs: list[float], clean: list[bool]) -> float:
        """The rate (bpm) over the clean intervals among the last ``tachy_resolved_beats`` beats (at least
        ``tachy_beats``), for an extreme tachycardia plainly back; 0 (back: the ``tachy_beats`` rate alone decides, as
        with ``tachy_resolved_beats`` 0) where fewer than ``tachy_beats - 1`` of them are clean (since a gap, or in
        noise: a noisy interval is left out, it does not hold the alarm on)."""
        c = self.cfg
        if c.tachy_resolved_beats <= 0:
            return 0.0
        n = max(c.tachy_resolved_beats, c.tachy_beats) - 1
        kept = [r for r, ok in zip(rrs[-n:], clean[-n:], strict=True) if ok]
        if len(kept) < max(1, c.tachy_beats - 1):
            return 0.0
        return 60.0 * len(kept) / sum(kept)

    def _episode_over(self, cond: Condition, index: int, resolved: bool) -> bool:
        """Whether an extreme-rate condition's episode is over (its alarm may clear): the rate is ``resolved``
        (``rate_resolved_bpm`` inside the limit) and the condition has been absent for ``rate_resolved_s``, or it
        has been absent for ``rate_episode_s``."""
        last = self.met.get(cond)
        if last is None:
            return True
        gone = index - last
        return (resolved and gone >= round(self.cfg.rate_resolved_s * self.fs)) \
            or gone >= round(self.cfg.rate_episode_s * self.fs)

    def _chained(self, cond: Condition, index: int) -> bool:
        """A higher alarm of ``cond``'s chain is on, or cleared less than ``chain_s`` before sample ``index`` (its
        episode): ``cond`` is then not raised."""
        return self.cfg.chain_s > 0 and announced(CHAINS.get(cond, ()), self.active, self.ended, index,
                                                  round(self.cfg.chain_s * self.fs))

    def _set(self, cond: Condition, active: bool, index: int, message: str = "") -> list[Change]:
        if active == (cond in self.active):
            return []
        if active:
            if self._chained(cond, index):
                return []
            self.active.add(cond)
            self.raised[cond] = int(index)
        else:
            self.active.discard(cond)
            self.ended[cond] = int(index)
        return [Change(cond, active, int(index), message)]


class InOrder:
    """A bed's :class:`LethalWatch` inputs, each released in the order of the sample at which it was decided, once
    every input up to there is known: what the watch is told, and so every lethal and rate alarm, then depends on
    the signal alone, not on the device's packet length, the number of beds, or when the beds' typing and VF
    windows were analysed together (before, a QRS reached the watch at its chunk while the beats' types and the VF
    windows came at the next flush of every bed's work: CinC 2015 a345l's pause came alone but not with two other
    beds; t762s's extreme tachycardia with 0.25 s packets but not with 1 s ones).

    ``put(at, kind, args)``: an input of ``kind`` (:attr:`GAP`, :attr:`QRS`, :attr:`TYPED`, :attr:`VF`,
    :attr:`TICK`, :attr:`OFF`: at the same sample they go in this order, then in the order they were put; ``OFF``, a
    second lead off or read again, is for the monitor's "second lead off" alarm, not the watch) with its arguments,
    decided at absolute sample ``at``.  ``due(horizon)`` returns the ``(at, kind, args)`` due at or before ``horizon``
    in that order; the caller tells the watch (``Monitor._release``) and decides the horizon: the sample up to which
    every source (QRS detector, beat typer, VF windows) has put all it will ever put there.  Plain tuples, no
    closures: a live bed puts about three inputs per 0.25 s packet.
    """

    GAP, QRS, TYPED, VF, TICK, OFF = range(6)

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, int, tuple[object, ...]]] = []
        self._n = itertools.count()

    def put(self, at: int, kind: int, args: tuple[object, ...]) -> None:
        heapq.heappush(self._heap, (at, kind, next(self._n), args))

    def due(self, horizon: float) -> list[tuple[int, int, tuple[object, ...]]]:
        heap, pop = self._heap, heapq.heappop
        out = []
        while heap and heap[0][0] <= horizon:
            at, kind, _, args = pop(heap)
            out.append((at, kind, args))
        return out


class LeadFusion:
    """The lethal conditions of a bed with a second ECG lead (``--second-lead``, or a device that sends two leads),
    from each lead's own :class:`LethalWatch` (each lead has its QRS detector, beat typer and VF detector).

    A lead is *readable* while its signal can be read: not leads off or signal loss (its watch holds its timer), and
    not noise (its "ECG cannot be analysed" is off).

    - extreme bradycardia: raised when either lead's watch raises it (a rate read on the lead where it can be read:
      noise detections in one lead split a slow rhythm's intervals, CinC b730s), cleared once no lead's watch has it
      on; the message says when the second lead raised it.  Not a lead's whose own asystole has come since while
      the other lead, readable, shows QRS (no asystole for the bed: the lead's rate is stale; a second lead whose
      complexes fell under its detector's floor after electrode taps took the taps for a rhythm of 34 bpm, then found
      no QRS at all, and the bed showed that rate "(second lead)" to the record's end over lead II's 80 bpm, a
      newcomer's MIT-BIH 205, session 36), until that lead's watch meets the bradycardia again after its asystole
      (raised again there) or clears it.  A pause of both leads is the bed's asystole and leaves the bradycardia as
      it was.  (Holding a lead's bradycardia while the other lead reads a steady rate was tried and not kept: a lead
      that counts tall P waves in complete heart block, or T waves of a long QT, reads such a rate and silenced true
      bradycardia.)
    - asystole and pause (no QRS for ``asystole_s``, ``pause_s``): raised when no readable lead has a QRS: the watch
      of each lead that can be read has it on (at least one of them), the others cannot be read (a lead whose clean
      QRS have come back for ``asystole_s`` can be read here, though its "ECG cannot be analysed" waits out its
      episode: :attr:`LethalWatch.reads_again`).  A readable second
      lead that still shows QRS complexes holds the first lead's (a lead II whose electrode moved or whose complexes
      fell to nothing is no asystole, and no pause: a MEDIUM pause beside a beating lead V, newcomer, session 24); a
      second lead in noise does not (CinC 2015 a142s, whose lead V's baseline wander held a true asystole), nor one
      whose own VF/flutter is on (the bed showing none) and whose "QRS" in the silence are all unlike its QRS (session
      55: a standstill's P waves counted in V1's muscle noise, which V1 called VF); a first lead that cannot be read
      leaves it to the second;
    - ventricular tachycardia (``vt``): the first lead's run, and the second lead's when the first lead, readable,
      typed a run of ``confirm_beats`` (4) or more beats ventricular within the second lead's VT episode
      ("confirmed", the default: a lead's beat typer misses some of a run's complexes that the other shows, CinC
      2015 v197l, v597l, v842s; :meth:`_vt_confirmed`); once confirmed, the second lead's VT is the bed's until that
      lead clears it or the first lead has typed ``quiet_beats`` (8) beats without a ventricular one; as the
      conditions below ("first"),
      either lead's ("either": as bradycardia), or the first lead's confirmed by the second where that can be read
      ("both": as asystole).  The beat typer was fitted on lead II/MLII: on other leads (V1's rS complexes) it types
      far more beats ventricular, so a second lead's run alone is not enough (MIT-BIH DS1 false VT 3 -> 28 with
      "either");
    - "ECG cannot be analysed" (the watch's technical condition): on only while neither lead can be read;
    - everything else (VF/flutter, extreme tachycardia, the heart-rate limits): the first lead's, and the
      second lead's too while only the second can be read (the message says so): a lead II whose electrode came off
      does not silence the VF the other lead shows.  VF/flutter and VT (``vt="first"``) come from the second lead
      only while the first is off or lost (leads off, signal loss), not while it is in noise: motion and muscle noise
      reach both leads, and the second lead's VF detector took it for VF (VFDB development half: false VF/flutter
      alarms 3 -> 20 when the second lead's VF counted in the first lead's noise; CinC 2015 f120s).  Extreme
      tachycardia is not taken from either lead as bradycardia is: the second lead's double
      counting raised it falsely (MIT-BIH DS1 with ``--second-lead``: 6 more false alarms, in 106, 203, 207 and 208,
      and no true CinC 2015 tachycardia more; docs/alarms.md).

    The choice follows what the CinC 2015 entries did with several leads (a rate or a rhythm taken from the
    signal-quality-best channel, asystole only where no channel shows beats: Plesinger et al. 2016; Clifford et al.
    2016, cited in this module's docstring); it was measured on the development records (docs/alarms.md)."""

    VT_MODES = ("first", "confirmed", "either", "both")
    VETO_BEFORE = 4  # the second lead's intervals before a run its rhythm is measured on (_other_rhythm)
    # ... and the signal after a run by which its QRS over the run are decided (the detector's look-ahead: a QRS
    # found later, by search-back, only makes the veto less likely)
    VETO_DECIDED_S = 0.25

    def __init__(self, *, vt: str = "confirmed", confirm_beats: int = 4, confirm_tol_s: float = 0.15,
                 quiet_beats: int = 8, veto: bool = True, veto_wait_s: float = 2.0, veto_rr: float = 0.2,
                 veto_like: float = 0.9, veto_amp: float = 1.5) -> None:
        if vt not in self.VT_MODES:
            raise ValueError(f"second-lead VT must be one of {', '.join(self.VT_MODES)}, got {vt!r}")
        self.confirmed = vt == "confirmed"
        # the first lead's VT run not raised where the second lead, readable, goes on with its own complexes at its
        # own rhythm over it (:meth:`_other_rhythm`: veto_rr, veto_like, veto_amp); decided once the second lead has
        # a QRS after the run and has typed those over it, or veto_wait_s of signal after it
        self.veto, self.veto_wait_s, self.veto_rr = veto, veto_wait_s, veto_rr
        self.veto_like, self.veto_amp = veto_like, veto_amp
        self._veto_episode: int | None = None  # the sample of the first lead's VT raise the verdicts below are of
        self._veto_span: tuple[int, int] | None = None  # its run (first, last QRS) waiting for the second lead
        self._vetoed: set[tuple[int, int]] = set()  # ... and its runs vetoed
        self.ended = False  # the bed's streams have ended: a run waiting for the second lead is judged on what came
        self.confirm_beats, self.confirm_tol_s = confirm_beats, confirm_tol_s
        self.watches: tuple[LethalWatch | None, LethalWatch | None] = (None, None)
        self._vt2_ok = False  # the second lead's VT was confirmed by the first lead (vt="confirmed")
        self._vt2_at = 0  # ... at this sample
        self._vt2_done = False  # a confirmation ended by the first lead's quiet: none more in this episode
        self.quiet_beats = quiet_beats
        self._why: dict[Condition, str] = {}
        # lead -> the sample of its extreme bradycardia (its watch's raise) that its own asystole made stale
        self._brady_stale: dict[int, int] = {}
        self.either = frozenset({Condition.EXTREME_BRADY, *((Condition.VTACH,) if vt == "either" else ())})
        self.both = frozenset({Condition.ASYSTOLE, Condition.PAUSE, Condition.CANNOT_ANALYSE,
                               *((Condition.VTACH,) if vt == "both" else ())})
        self.on: tuple[dict[Condition, Change], dict[Condition, Change]] = ({}, {})  # each lead's active changes
        self.shown: set[Condition] = set()  # what the bed has raised from these conditions
        self.readable = (True, True)
        self.first_off = False  # the first lead is off or lost (not only noisy)
        self.off_only = frozenset({Condition.VFIB, Condition.VTACH})
        self.now = 0  # the latest sample index told
        self.cleared: dict[Condition, int] = {}  # the sample at which the bed last cleared each condition
        self.raised_at: dict[Condition, int] = {}  # ... and last raised it
        # (lo, hi) -> whether the second lead's "QRS" between samples lo and hi are all P waves, unlike its QRS where
        # the first lead confirmed them and small (segmentation.agreement.LeadAgreement.p_waves); None: not known
        self.second_p_waves: Callable[[int, int], bool] | None = None
        # ... whether they are all unlike its QRS (segmentation.agreement.LeadAgreement.unlike_qrs); None: not known
        self.second_unlike: Callable[[int, int], bool] | None = None

    def update(self, lead: int, changes: list[Change], *, second_readable: bool, first_readable: bool = True,
               first_off: bool = False, at: int | None = None,
               watches: tuple[LethalWatch | None, LethalWatch | None] | None = None,
               other: list[Change] | None = None) -> list[Change]:
        """Lead ``lead``'s watch changes (at sample ``at``, when known) -> the bed's.  ``first_readable`` and
        ``second_readable``: whether each lead's signal can be read now (class docstring); a change of either
        re-judges every condition, so it may raise or clear the bed's alarms without a change of the watches'.
        ``watches``: the two leads' watches (``vt="confirmed"`` reads the first lead's typed beats).  ``other``: the
        other lead's changes told at the same sample, taken in before the bed is judged: judged with one lead's
        changes and the other lead's readability as its watch has it after its own changes not yet taken in, a
        second lead whose asystole cleared its "ECG cannot be analysed" (readable again) held the first lead's
        asystole as if it showed QRS, and the bed's asystole was cleared and raised again at one sample (a
        newcomer's flat line spliced into both leads of MIT-BIH 122, session 54)."""
        if watches is not None:
            self.watches = watches
        told_changes = [*changes, *(other or [])]
        for k, chs in ((lead, changes), (1 - lead, other or [])):
            for ch in chs:
                if ch.active:
                    self.on[k][ch.condition] = ch
                else:
                    self.on[k].pop(ch.condition, None)
                self.now = max(self.now, ch.index)
        if at is not None:
            self.now = max(self.now, at)
        self.readable = (first_readable and not first_off, second_readable)
        self.first_off = first_off
        told = {ch.condition: ch.index for ch in changes}
        for c, i in {ch.condition: ch.index for ch in other or []}.items():  # told by both leads: the later sample
            told[c] = max(i, told.get(c, i))
        self._why = {ch.condition: ch.message for ch in told_changes if not ch.active}  # a told clearing's reason
        rest = (set(self.on[0]) | set(self.on[1]) | self.shown) - told.keys()

        def met(c: Condition) -> tuple[int, str]:  # re-judged in the order they were met (a pause before its asystole)
            ch = self.on[0].get(c) or self.on[1].get(c)
            return (ch.index if ch is not None else self.now, c.value)

        out: list[Change] = []
        for cond in [*told, *sorted(rest, key=met)]:
            out += self._judge(cond, told.get(cond))
        return out

    def _qrs_in_silence(self, lead: int, at: int) -> bool:
        """Whether lead ``lead`` has come as far as sample ``at``, where the other lead's asystole was raised, and
        found a QRS in the ``asystole_s`` after that lead's last QRS (from ``confirm_tol_s`` after it: the same beat on
        both leads) that its asystole counts (the other lead's silence is then not the bed's); False until it has come
        that far, whichever lead's analysis lags."""
        w, other = self.watches[lead], self.watches[1 - lead]
        if w is None or other is None or w.now is None or w.now < at:
            return False
        span = round(other.cfg.asystole_s * other.fs)
        quiet = [q for q in other.qrs_at if q <= at - span]
        last = quiet[-1] if quiet else at - span
        lo, hi = last + round(self.confirm_tol_s * w.fs), last + span
        return any(lo < q <= hi for q in w.qrs_at)

    def _readable_for(self, cond: Condition) -> tuple[bool, bool]:
        """Whether each lead can be read for ``cond``: :attr:`readable`, and for asystole and pause also a lead that
        reads clean QRS again (:meth:`_reads_again`: it shows whether the heart beats, though its "ECG cannot be
        analysed" waits out its episode; a deaf second lead's silence raised asystole over lead II's clean beats
        after electrode taps, a newcomer's MIT-BIH 205, session 36)."""
        r0, r1 = self.readable
        if cond in (Condition.ASYSTOLE, Condition.PAUSE):
            r0, r1 = r0 or self._reads_again(0), r1 or self._reads_again(1)
        return r0, r1

    def _both_want(self, cond: Condition) -> bool:
        """A condition of both leads (:attr:`both`): on where each lead that can be read has it, one at least.  The
        first lead's asystole or pause is the bed's also where the second lead's "QRS" in that silence are all P waves
        (:attr:`second_p_waves`: unlike its QRS where the first lead confirmed them, and under half their size): a
        heart block's P waves, tall on a V1-like second lead, that its detector counts once it finds no QRS (a
        reviewer's synthetic third-degree block, session 49: pauses of 3.2-4 s with 0.4 mV P waves raised neither pause
        nor asystole with two leads), or where the second lead's own VF/flutter is on, the bed shows none, and its "QRS"
        there are all unlike its QRS (:attr:`second_unlike`; session 55)."""
        (r0, r1), on0, on1 = self._readable_for(cond), cond in self.on[0], cond in self.on[1]
        if cond in (Condition.ASYSTOLE, Condition.PAUSE) and cond not in self.shown:
            # a lead whose QRS have come back (its watch counting them towards its clearing, LethalWatch.calm) does
            # not raise it again: the bed's alarm, cleared by the other lead's QRS, was raised and cleared at one
            # sample when that lead went into noise a beat before this lead's clearing (a newcomer's flat line in both
            # leads of MIT-BIH 208, session 54).  While it is on, it clears as before.
            w0, w1 = self.watches
            on0 = on0 and not (w0 is not None and w0.calm > 0)
            on1 = on1 and not (w1 is not None and w1.calm > 0)
        if (cond in (Condition.ASYSTOLE, Condition.PAUSE) and on0 and not on1 and r1
                and (w0 := self.watches[0]) is not None):
            # (from confirm_tol_s after the first lead's last QRS: that QRS on the second lead is no QRS in the silence;
            # it clears where the second lead shows a QRS again, or as the first lead's does)
            span = round((w0.cfg.asystole_s if cond is Condition.ASYSTOLE else w0.cfg.pause_s) * w0.fs)
            at = self.on[0][cond].index
            lo, hi = at - span + round(self.confirm_tol_s * w0.fs), max(self.now, at)
            w1 = self.watches[1]
            # a second lead whose own VF detector has its VF/flutter on (the bed shows it only where the first lead is
            # off) and whose "QRS" in the silence are all unlike its QRS holds no silence of the first lead: they are
            # the waves or the noise it calls fibrillatory (session 55: MIT-BIH 122 with its QRS-T cut out for 10 s,
            # P waves on lead II, muscle noise on V1, whose detector counted the P waves in the noise and whose VF
            # detector called it VF: neither asystole nor VF for the bed).  Not while the bed shows a VF/flutter (the
            # rhythm without QRS is alarmed: VFDB 420's VT, VF on one lead and asystole on the other), nor where the
            # "QRS" are like its QRS (a V1 whose QRS go on under a tremor its VF detector calls VF holds a lead II
            # whose QRS fell to a tenth: without the likeness, false asystole alarms of up to 25 s, a reviewer)
            if (w1 is not None and Condition.VFIB in w1.active and Condition.VFIB not in self.shown
                    and self.second_unlike is not None and self.second_unlike(lo, hi)):
                on1 = True
            elif self.second_p_waves is not None:
                on1 = self.second_p_waves(lo, hi)
        return (on0 or not r0) and (on1 or not r1) and (on0 or on1)

    def _reads_again(self, lead: int) -> bool:
        """Whether lead ``lead`` shows clean QRS again (:attr:`LethalWatch.reads_again`), settled and not off."""
        w = self.watches[lead]
        return w is not None and w.settled and not w.off and w.reads_again

    def _vt_confirmed(self) -> bool:
        """``vt="confirmed"``: the first lead typed a run of ``confirm_beats`` (4) or more consecutive beats
        ventricular, one of them within the second lead's VT episode (from its first run's first QRS to its latest
        beat, ``confirm_tol_s`` either side).  A triplet is not enough: sinus tachycardia with PVC triplets beside a
        second lead whose typer calls its sinus beats ventricular (V1) raised a false VT (a newcomer, session 30)."""
        w0, w1 = self.watches
        if w0 is None or w1 is None or w1.vt_span is None:
            return False
        tol = round(self.confirm_tol_s * w0.fs)
        lo, hi = w1.vt_span
        return w0.ventricular_run(lo - tol, hi + tol) >= self.confirm_beats

    def _first_vt_stands(self, second_readable: bool) -> bool:
        """Whether the first lead's VT (on in its watch, not yet the bed's) is the bed's: not while every run its
        watch met in this episode was vetoed by the second lead (:meth:`_other_rhythm`), nor while the run being
        judged waits for the second lead's beats over it.  A second lead that cannot be read, or none, vetoes
        nothing."""
        w0, w1 = self.watches
        ch = self.on[0][Condition.VTACH]
        if self._veto_episode != ch.index:  # a new episode of the first lead's VT
            self._veto_episode, self._veto_span, self._vetoed = ch.index, None, set()
        if w0 is None or w1 is None or w0.vt_span is None or not second_readable:
            return True
        # the run waiting for the second lead, or else the latest run met (a run vetoed is not judged again)
        span = self._veto_span or w0.vt_span
        if span in self._vetoed:
            return False
        vetoed = self._other_rhythm(w0, w1, span)
        self._veto_span = span if vetoed is None else None
        if vetoed:
            self._vetoed.add(span)
        return vetoed is False

    def _other_rhythm(self, w0: LethalWatch, w1: LethalWatch, span: tuple[int, int]) -> bool | None:
        """Whether the second lead shows another rhythm over the first lead's VT run at samples ``span`` (its first
        and last QRS, ``confirm_tol_s`` either side): two beats or more there, fewer than the run's, none typed
        ventricular or in artifact, each like its template (the typer's correlation at least ``veto_like``, 0.9) and of
        its size (peak-to-peak within ``veto_amp``, 1.5 times, either way), and its QRS from the last before the run
        to the first after it, none in noise, each interval within ``veto_rr`` (20 %) of the median of the
        ``VETO_BEFORE`` (4) intervals before the run.  What rules the veto out decides at once (a beat over the run
        unlike that, as many QRS as the run's, or fewer than 2 ``VETO_DECIDED_S`` after its window).
        A ventricular run shows on every lead (each complex is one depolarisation of the ventricles); a second lead
        whose own complexes go on unchanged at their own rhythm shows that the first lead's fast "ventricular" beats
        were noise or motion on that lead alone (muscle tremor, an electrode rubbed), where most of the ICU's false
        VT alarms come from (Aboukhalil A et al., Reducing false alarm rates for critical arrhythmias using the
        arterial blood pressure waveform, J Biomed Inform 41(3):442-451, 2008; the CinC 2015 entries read a VT
        against the other channels: Plesinger F et al., Physiol Meas 37(8):1313-1325, 2016).  Not vetoed where the
        second lead shows as many beats (the VT there too), one of them ventricular, or a rhythm that changed over
        the run, or complexes unlike its own: a VT whose complexes are small on that lead, its detector finding some of
        them, changes their size and shape and breaks its intervals (CinC 2015 v131l: a quarter of the sinus
        complexes' size, intervals 1.36 and 1.33 times its median; with a slower sinus rhythm before it the intervals
        alone fell within 20 %: a reviewer, session 53).  None: not decided yet (the second lead has
        no QRS after the run, or has not typed those over it, and ``veto_wait_s`` of signal has not passed)."""
        tol = round(self.confirm_tol_s * w0.fs)
        lo, hi = span[0] - tol, span[1] + tol
        beats = [(i, v) for i, v in w1.typed_at if lo <= i <= hi]
        like = {i: (art, c, m) for i, art, c, m in w1.typed_like}
        if any(v or like[i][0] for i, v in beats):
            return False  # a beat of the run typed ventricular (or in artifact) on the second lead too: at once
        if any(not (c >= self.veto_like and abs(m) <= math.log(self.veto_amp)) for _, c, m in
               (like[i] for i, _ in beats)):
            # a beat over the run unlike the second lead's own complexes (or not known): its rhythm is not what goes
            # on (CinC 2015 v131l's VT, a quarter of the sinus complexes' size on lead V, typed not ventricular there)
            return False
        q = list(w1.qrs_at)
        a, b = bisect.bisect_left(q, lo), bisect.bisect_right(q, hi)
        n0 = sum(1 for i, _ in w0.typed_at if span[0] <= i <= span[1])
        typed_to = w1.typed_at[-1][0] if w1.typed_at else -1
        now = max(self.now, w0.typed_at[-1][0] if w0.typed_at else -1, typed_to)
        if b - a >= n0 or (b - a < 2 and now >= hi + round(self.VETO_DECIDED_S * w0.fs)):
            return False  # as many QRS over the run (the VT there too), or under 2 once those over it are decided
        waiting = b >= len(q) or (b > 0 and typed_to < q[b - 1])
        if waiting and not self.ended and now < hi + round(self.veto_wait_s * w0.fs):
            return None
        if not 2 <= len(beats) < n0 or a < self.VETO_BEFORE + 1 or b >= len(q):
            return False
        ref = float(np.median(np.diff(q[a - self.VETO_BEFORE - 1:a])))
        seq = q[a - 1:b + 1]
        noisy = set(w1.noisy_qrs)
        return ref > 0 and not any(i in noisy for i in seq) and all(
            abs((j - i) / ref - 1.0) <= self.veto_rr for i, j in itertools.pairwise(seq))

    def _judge(self, cond: Condition, index: int | None) -> list[Change]:
        """``index``: the sample of this condition's own change just told, None when re-judged."""
        (r0, r1), on0, on1 = self.readable, cond in self.on[0], cond in self.on[1]
        at_hold: int | None = None  # extreme bradycardia cleared because its lead's asystole came: that sample
        at_again: int | None = None  # ... and raised again where that lead met it again
        if cond is Condition.EXTREME_BRADY:
            # either lead's, but not a lead's whose own asystole has come since while the other lead, readable,
            # showed QRS in those 4 s (the bed has no asystole then: that lead's rate is stale; a lead whose
            # complexes fell under its detector's floor after electrode taps took the taps for a rhythm of 34 bpm,
            # then found no QRS at all, and the bed showed that rate "(second lead)" to the record's end over lead
            # II's 80 bpm, a newcomer's MIT-BIH 205, session 36).  The lead's rate counts again once its watch meets
            # the bradycardia after that asystole (a true slow rhythm after a pause on one lead: a reviewer, session
            # 36), or its bradycardia clears.  A pause of both leads (sinus arrest, a dropped beat of a 2:1 block)
            # is the bed's asystole and leaves the bradycardia as it was.
            ok, readable = [], self._readable_for(Condition.ASYSTOLE)
            for k, on in ((0, on0), (1, on1)):
                ch, asy, w = self.on[k].get(cond), self.on[k].get(Condition.ASYSTOLE), self.watches[k]
                j = 1 - k
                if ch is None:
                    self._brady_stale.pop(k, None)
                elif (asy is not None and asy.index >= ch.index and k not in self._brady_stale and readable[j]
                      and self._qrs_in_silence(j, asy.index)):
                    self._brady_stale[k] = asy.index
                    at_hold = max(at_hold or 0, asy.index)
                elif k in self._brady_stale and w is not None and w.met.get(cond, -1) > self._brady_stale[k]:
                    del self._brady_stale[k]  # met again after its asystole: a rate again
                    at_again = max(at_again or 0, w.met[cond])
                ok.append(on and k not in self._brady_stale)
            ok0, ok1 = ok
            want, src = ok0 or ok1, 0 if ok0 else 1
            if want or not (on0 or on1):
                at_hold = None
            elif cond in self.shown:
                self._why.setdefault(cond, f"no QRS on the {'second' if on1 else 'first'} lead since, QRS on the "
                                           "other")
        elif cond in self.either:
            want, src = on0 or on1, 0 if on0 else 1
        elif cond in self.both:
            want, src = self._both_want(cond), 0 if on0 else 1
        else:  # the first lead's, and the second lead's too while only the second can be read (VF and VT: while
            # the first lead is off or lost, not in noise, which a second lead's VF detector reads as VF too)
            also = (self.first_off if cond in self.off_only else not r0) and r1 and on1
            if cond is Condition.VTACH and self.confirmed:
                # once confirmed, the second lead's VT stands until that lead clears it, or the first lead has typed
                # quiet_beats beats since without a ventricular one (a second lead whose typer calls sinus beats
                # ventricular would hold it for its whole 60 s episode: a newcomer, session 30)
                # (and is not confirmed again within that episode of the second lead: in high-grade ectopy it was
                # raised again and again, VFDB dev 610; the first lead's own runs still raise it)
                w0 = self.watches[0]
                last = w0.typed_at[-1][0] if w0 is not None and w0.typed_at else -1  # the first lead's latest beat
                if not on1:
                    self._vt2_ok, self._vt2_done = False, False
                elif self._vt2_ok and w0 is not None and w0.quiet_since(self._vt2_at, self.quiet_beats):
                    self._vt2_ok, self._vt2_done = False, True
                    self._why.setdefault(cond, f"the first lead's last {self.quiet_beats} beats not ventricular")
                elif not self._vt2_ok and not self._vt2_done and r0 and self._vt_confirmed():
                    self._vt2_ok, self._vt2_at = True, last
                also = also or self._vt2_ok
            first = on0
            if cond is Condition.VTACH and on0 and self.veto and cond not in self.shown:
                first = self._first_vt_stands(r1)
            want, src = first or also, 0 if first else 1
        if want and cond not in self.shown:
            self.shown.add(cond)
            ch = self.on[src][cond]
            where = " (second lead)" if src else ""
            # the sample where it was met, or (a first-lead condition taken from the second lead when the first became
            # unreadable) where the bed decided it; never before the bed's own last clearing of it (a condition of
            # both leads raised again at a lead's old sample came before that clearing, the same alarm shown twice
            # over one stretch: NSTDB 118e06's "ECG cannot be analysed", a newcomer, session 25).  A condition of
            # both leads is met where the later lead met it, or, raised because a lead became unreadable (judged
            # again, ``index`` None), where the bed decided it: a second lead's "ECG cannot be analysed", on for 30 s
            # over a first lead that could be read, was shown raised at that lead's old sample when the first lead's
            # electrode came off (a newcomer, session 38: MIT-BIH 101 saturated at 40 s, the alarm listed from 10.6 s)
            if cond in self.both:
                at = max(c.index for c in (self.on[0].get(cond), self.on[1].get(cond)) if c is not None)
                at = at if index is not None else max(at, self.now)
            else:
                at = ch.index if cond in self.either or index is not None else max(ch.index, self.now)
            if at_again is not None:  # a stale rate met again: where it was met (not before the bed's clearing)
                at = max(at_again, self.cleared.get(cond, -1))
            elif self.cleared.get(cond, -1) >= at:  # met again after that clearing: where the bed decided it
                at = max(self.cleared[cond], self.now if index is None else index)
            self.raised_at[cond] = at
            return [Change(cond, True, at, ch.message + where)]
        if not want and cond in self.shown:
            self.shown.discard(cond)
            # never before the bed raised it (a lead's clearing at its own sample can come before the sample where the
            # bed decided the raise: an asystole listed as cleared before its own raise, a newcomer, session 31)
            self.cleared[cond] = max(at_hold if at_hold is not None else self.now if index is None else index,
                                     self.raised_at.get(cond, 0))
            why = self._why.get(cond)
            if cond is Condition.CANNOT_ANALYSE and why == "asystole" and not self._both_want(Condition.ASYSTOLE):
                # a lead's own asystole ended its "cannot be analysed", but the other lead's QRS hold the bed's: the
                # bed must not say "asystole" (a reviewer, session 36: MIT-BIH 205 with electrode taps)
                why = "no QRS on one lead, QRS on the other: the ECG can be read"
            if why is None:  # cleared by the bed's judgement (a lead's readability), not a lead's own clearing
                why = ("QRS on the other lead" if cond in (Condition.ASYSTOLE, Condition.PAUSE) and (on0 or on1)
                       else "the second lead cannot be read" if on1 and not r1
                       else "the first lead can be read again" if on1 else "")
            return [Change(cond, False, self.cleared[cond], why)]
        return []
