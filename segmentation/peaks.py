"""Streaming QRS detection: a causal slope-energy envelope and Pan-Tompkins/Hamilton decision rules.

Envelope (unchanged from the first detector, so QRS positions, and the fiducials refined from
them in :mod:`ecgmon.segmentation.beats`, stay where they were): the 5-20 Hz Butterworth
band-pass of the raw signal, its first difference squared, a causal 100 ms moving average
(Pan & Tompkins' moving-window integration).  It peaks near the end of a QRS of either polarity.
A *candidate* is a local maximum of the envelope, the largest within +/- ``peak_half_s`` (150 ms,
so rates up to 400 bpm stay separate), and at least ``dominance`` (0.6) of the largest envelope
within the ``dominance_s`` (300 ms) after it (a P wave before a larger QRS is no candidate: the
first detector's +/- 300 ms window did this both ways, which capped the rate at 200 bpm).
Pre-blanking (Hamilton's open-source detector: of two peaks within 200 ms the larger is kept; Hamilton P,
Open source ECG analysis, Computers in Cardiology 29:101-104, 2002): a candidate followed within ``blank_s``
(200 ms) by an envelope peak larger by more than 1 / ``blank_ratio`` (0.9) whose band-passed slope is also
steeper by that much is no candidate: a tall P wave before its QRS (first-degree AV block with large P waves,
MIT-BIH 108, where it gave about 35 of the record's 61 false beats).  Only for a candidate at least
``blank_after_s`` (0.4 s) after the last QRS (no P wave fits in a shorter cycle; it spares a couplet's first
complex) and while the mean RR is at least ``blank_min_rr_s`` (0.5 s, 120 bpm): in a tachycardia (a wide
complex's humped envelope, complexes of varying size, EC13 4a/4b) the rule would drop complexes.
In a tachycardia (at least 4 RR intervals known, their mean under ``scale_below_s``, 0.4 s: over 150 bpm) both
windows shrink with the mean RR, to ``peak_half_rr`` (0.3) and ``dominance_rr`` (0.5) of it where that is shorter,
and so does the refractory period below (``refractory_rr``, 0.6): a wide ventricular complex (120-200 ms) gives a
humped envelope whose largest hump moves by up to +/- 80 ms from complex to complex, and at 200-250 bpm (RR 240-300
ms) fixed 150/300 ms windows let a larger neighbour hide a complex (EC13 4a/4b: 1 in 8 VT complexes lost).  A
candidate whose half-window holds nothing larger but the rising flank of a larger hump whose apex lies beyond it
(:func:`_flank_apexes`: samples larger than the candidate there, none of them an apex, the largest within the
smallest half-window of itself; that hump's apex looked for within the dominance look-ahead of the candidate, which
every chunking has) stays a candidate where four things hold (:meth:`_own_hump`): the rhythm is regular (all but
``apex_irregular``, 1, of the last RR intervals within ``apex_regular``, 15 %, of their median), the next QRS is due
(the candidate at least ``t_rr``, 0.8, of the mean RR after the last QRS), its steepest band-passed slope is at
least ``apex_slope`` (0.8) of that hump's, and the two are not the two edges of one wide complex (the raw signal's
net change before each of opposite signs and at least ``edge_frac`` of its peak to peak, as for the other edge
below).  EC13 4a's rounded VT complexes give a hump on each edge of every cycle, 120-170 ms apart and of changing
sizes: the larger one's flank hid the smaller where it was the one due, the detector went over to the other edge, an
interval of 1.4 cycles (4a from 40 s: 16 intervals over 0.4 s for a 0.30 s cycle, the rate shown down to 171 for
198; every cycle counted with the rule).  Each limit answers what a form without it did (session 46,
docs/recordings.md): with none, a peaked T wave twice the R at 155-190 bpm became the beat for the whole tachycardia
(a reviewer's); with the due limit alone, CinC 2015 v674s (about 100 bpm) gained 8 beats between its beats and its
false VT alarm was held longer; without the regular rhythm, t409l (noise read as a fast rhythm) gained 22 beats and
a false VT; without the edges, VFDB 611's sawtooth VT (tests/data/vfdb-vt) had its beats on the other edge of the
complex for 20 of its 40 s, the beat count the same.  Each candidate's windows follow the mean RR of the QRS decided
before it, so the detections do not depend on the chunking.  While the mean RR is under ``edge_trim_below_s`` (0.6
s: over 100 bpm) the dominance look-ahead leaves out the rising edge it ends on: that edge is the next QRS, beyond
the window, and a fast irregular rhythm's smaller beat 0.3-0.4 s before a larger one is a beat (CinC 2015 t157l,
atrial fibrillation at 125-145 bpm: its smaller beats were dropped and the true extreme-tachycardia alarm missed).
Slower, the edge still counts (noise before a QRS: NSTDB 118 at 12 dB, 5 more false beats without the rate limit).

Decision rules, on the square root of the envelope (an RMS slope, proportional to the QRS's
amplitude, so a 4x amplitude change is a 4x level change):

- adaptive signal and noise levels and threshold ``THR = NPK + thr_frac * (SPK - NPK)``, the levels
  updated as running averages (weight 1/8) of the candidates classed as QRS or noise (Pan & Tompkins
  1985; Hamilton & Tompkins 1986, ``thr_frac`` 0.25 as Pan-Tompkins).  A noise candidate enters the
  noise level at most at ``suspect_frac`` of the threshold (winsorised), so beats just under the
  threshold (a bigeminy's smaller PVCs) do not lift it over themselves;
- refractory period ``refractory_s`` (180 ms: 333 bpm; shorter in a tachycardia, above) after a QRS; a
  candidate between that and ``t_wave_s`` (360 ms) after a QRS whose steepest band-passed slope is less than
  half that of the QRS is a T wave (Pan & Tompkins 1985, section II.F), unless it comes at ``t_rr`` (0.8) of
  the mean RR or later (a T wave lies within the QT, shorter than the RR: in a tachycardia over 1 / 360 ms
  that is where the next QRS is due); the candidates passed over so (and those implausible or under the threshold)
  at ``passed_frac`` (half) of the threshold or more are reported (:attr:`QRSDetector.passed`): a premature beat
  under half the slope of a tall one before it is a T wave here, and a second lead may show its QRS
  (:mod:`ecgmon.segmentation.agreement`, session 57);
- wide complexes, their two edges (session 43): a wide monophasic complex (the sine-wave or sawtooth complexes of a
  sustained VT, a slow ventricular flutter) rises steeply, stays up, and falls as steeply 0.15-0.3 s later.  The two
  edges are two envelope peaks past the refractory period, equally steep, so no T wave by the slope rule: VFDB 611's
  15-minute VT at about 137 bpm was counted twice (3,903 QRS in its 904 s for about 2,060 cycles, 159 in the 40 s
  excerpt of tests/data/vfdb-vt; the rate shown about 270), and once the mean RR had halved, the windows shrank with
  it and held the double count.  A candidate's *edge* is the raw signal's net change over the ``edge_s`` (200 ms)
  before its envelope peak as a share of its peak to peak there: near +/-1 on one edge of a wide complex, near 0 over
  a whole QRS, which returns near where it began.  A candidate within ``t_wave_s`` after a QRS, the two edges of
  opposite signs, each at least ``edge_frac`` (0.6) and the cleaner at least ``edge_clean`` (0.9), the second undoing
  the first (their net changes summing to at most ``edge_undo``, 0.3, of the larger), is that complex's other edge:
  neither QRS nor noise, as in the refractory period (search-back never takes it).  While the last QRS had such an
  edge, the half-window is at most half their distance, so that each edge's window ends short of the other's.  611's
  episode: 2,078 QRS, 60 intervals under 0.3 s (3,650 before).  The clean edge is one of the pair: the 200 ms
  window before a sawtooth's less steep edge takes in the end of the edge before it (611's rises 0.66-0.75 against
  falls of 0.96-1.0), and both edges at 0.6 alone merged consecutive complexes of EC13 4b's fast wide VT (0.61-0.69
  each: its rate fell to 150 for 200) and raised CinC 2015 v655l's false VT; 0.75 for both left 611 double-counted
  for half its episode (1,014 intervals under 0.3 s).  The undo keeps a motion edge from taking the QRS after it as
  its other edge (NSTDB 118e06 at 391 s: +3.8 mV then the QRS's -2.4).  A step (one sample to the next moving over
  ``edge_step``, half, of the net change) is no edge: 10 mV square pulses (tests/test_qrs.py) were otherwise one
  regular wide "rhythm" at 60 bpm, which the signal-quality index called organised and clean, and the floor they set
  kept the detector deaf to the ECG after them.  Nor is it the other edge where the signal between them comes back
  past halfway down (up) the first edge before the second begins: a reviewer's bidirectional VT (flat-topped complexes
  of alternating polarity at 168-220 bpm, helper 91) had the falling edge of one complex taken for the other edge of
  the rising one before it, every other beat lost.  Left (the same review): square-like bidirectional complexes that
  fill the cycle (0.16 s at 200-220 bpm, 21 of 108 of its set-ups) still lose every other beat, and a monophasic VT
  whose width and size change from beat to beat (0.12-0.3 s, 0.5-3 mV, 150-190 bpm) is counted 0.6-0.7 times where
  the detector before counted it 1.3 times: the pairing across two complexes that the edges cannot tell from one.
  The same shape made of artefact is one regular wide rhythm too: CinC 2015 v128s's last 3 s of square motion waves
  now raise a false VT.  Chosen on 611,
  EC13 4b, v655l and NSTDB 118e06 (in-sample); synthetic trapezoid complexes at 110-170 bpm (tests/test_qrs.py) are
  counted once at 128-500 Hz, 1.6-2 times before; the development figures in docs/recordings.md, session 43;
- beat expectation under noise: while the noise level is over ``noisy_npk`` (a quarter) of the signal level
  (sustained noise: electrode motion, muscle), a candidate earlier than ``early_rr`` (0.7) of the mean RR must
  reach ``early_frac`` (0.9) of the signal level or of the last QRS's steepest slope, else it is noise
  (after Christov's beat-expectation threshold: Christov II, BioMed Eng OnLine 3:28, 2004); off at mean RR
  under ``early_min_rr_s`` (0.4 s, 150 bpm).  Chosen on MIT-BIH DS1 and the SVDB development half (a noise
  gate that leaves their premature beats), its levels looked at on NSTDB 118 too: NSTDB 118 figures are
  in-sample for it.  ``early_frac`` was 0.8; 0.9 was chosen on NSTDB 118 at 12 dB (false beats 25 -> 19, in-sample)
  and costs the SVDB development half 10 beats of 91,915 (docs/recordings.md);
- search-back: when no QRS came for ``searchback_rr`` (1.66) times the mean of the last 8 RR
  intervals, the largest noise candidate since the last QRS above ``searchback_frac`` (half) of the
  threshold is taken as a QRS, and the signal level learns from it at twice the usual rate
  (Pan & Tompkins 1985).  Its T-wave window follows the QT after a long cycle: Bazett's ``searchback_qtc``
  (0.40 s) times the square root of the RR that ended at the last QRS, at least ``t_wave_s`` (a bradycardia's
  T wave peaks 0.4-0.5 s after its QRS: CinC 2015 b656s, where search-back took it as a beat and the rate read
  over 40).  0.40 (the T wave's peak lies well inside the QT, QTc about 0.40-0.45 s) keeps MIT-BIH 201's
  aberrated premature beats 0.47 s after a QRS that 0.42 and 0.45 lost (2 beats); DS1, the SVDB development
  half and NSTDB 118 gave the same FN and FP counts with it as without (in-sample: chosen on b656s and 201);
- missed beats that recur (search-back's second limit): ectopic beats smaller than the dominant ones (MIT-BIH 208's
  PVCs have about half the sinus beats' RMS slope) that came under the threshold stay under it: each enters the
  noise level near the threshold (at ``suspect_frac`` of it), and each missed one turns two RR intervals into one,
  which lengthens the mean RR, so that 1.66 times it is never reached while the dominant beats keep coming.  The
  detector has two steady states there, and a loud start, a fall of the amplitude or a train of large pulses put it
  in the one without the PVCs, to the end of the record (a newcomer, session 33: 208 after 3 s of electrode motion
  at the start missed 45 of its next 49 PVCs, after a fall to a quarter 28 of 64).  So search-back also looks once
  no QRS came for ``searchback_rr`` times the *shortest regular RR*: the shortest of the last ``rr_beats`` RR
  intervals that at least ``regular_beats`` (3) of them share within ``regular_tol`` (12 %) of it, the RR between
  beats found both (Pan & Tompkins' RR AVERAGE2 likewise takes only the regular intervals, within 92-116 % of it,
  for their search-back limit: a missed beat's long interval does not move it).  Before the mean RR's limit it
  takes only a candidate at least ``early_slope`` (0.4) of the median steepest slope of the last 8 QRS (208's PVCs
  0.42; most early candidates in atrial fibrillation and noise, MIT-BIH 203 and SVDB 860, 0.2-0.38) and at least
  ``t_wave_s`` after the last QRS (within it, T and flutter waves as steep as half the QRS are left to the T-wave rule
  of the plain search-back: MIT-BIH 203's atrial flutter had a false extreme tachycardia from one taken 0.28 s after
  a QRS, and every false beat more on the development records came from such).  Once a few
  PVCs are taken they no longer hold the noise level up, and the threshold comes down to them.  On those
  excerpts: 45 of 49 PVCs missed -> 12 (all in the first 15 s after the motion), 28 of 64 -> 6 (in the 3 s after the
  fall).  Whole records (``evaluate --protocol qrs``/``nstdb``, both leads): MIT-BIH DS1 FN/FP 96/72, the same;
  SVDB development half 69/169 -> 62/169 (870); NSTDB 118 the same but 6 dB 28/151 -> 28/150 and -6 dB 334/757 ->
  333/758.  Chosen on these and on the excerpts, in-sample (docs/recordings.md, session 34: ``regular_beats`` 2
  caught the PVCs sooner at 173 more false beats on NSTDB 118, one lead; without ``early_slope``, 28 more on 203,
  860 and 854; without the T-wave limit DS1 94/73 and SVDB 62/172, with that false extreme tachycardia);
- levels learnt again after beats found only by search-back: search-back lowers the signal level by a quarter of the
  way to each beat it takes, so after a loud start that was taken for QRS (3 s of 3 mV electrode motion before
  MIT-BIH 208, a newcomer's record, session 33: a signal level four times the real QRS') the beats kept coming by
  search-back alone, one every 1.66 RR, and for 22 s the smaller PVCs stayed under the threshold, holding the noise
  level up near themselves (16 PVCs and 8 sinus beats missed, a false extreme bradycardia).  Re-acquisition (below)
  never came: a QRS was found every 1.5-2 s.  After ``relearn_sb`` (3) QRS in a row found only by search-back the
  levels are learnt again from the candidates of the last ``learn_s`` before the one being decided, as
  re-acquisition learns them (its floor and its check that the window's largest candidate stands out included),
  without deciding those seconds again: the levels were wrong, the beats are there.  That record: every beat from
  6 s on.  The signal level learnt is the window's largest candidate, which may be one the rules had refused (a T
  wave, pacemaker pulses alone), so it can also rise.  Only from a window of at least ``relearn_sb_min`` (3)
  candidates: from one or two the noise level fell to an eighth of the signal level, and a reviewer (session 35)
  found the false beats that followed (NSTDB 118e_6, first lead, 767 -> 794; MIT-BIH 108 with motion at 60 s,
  5 -> 10; with the limit 767 and 5, the loud start's gain kept).  The floor can refuse it in packets longer than
  ``reacquire_s`` as it refuses re-acquisition (below: QRS not rated yet count as clean), so there the beats may
  differ by packet (the reviewer's 108 with motion at 60 s did before the limit: 10 false beats in 0.05-6 s
  packets, 5 in 5-10 s; with it, 5 in 0.5-10 s).  On the first lead alone MIT-BIH DS1, the SVDB development half and
  NSTDB 118 at 12, 6 and 0 dB gave the same detections with the rule as without (docs/recordings.md, session 35;
  in-sample); the newcomers' perturbed excerpts (sessions 33-34) 49 and 23 fewer beats missed, 3 and 4 more false
  ones (before the limit of candidates);
- re-acquisition (after artefact, or when the amplitude falls more than search-back reaches): when no
  QRS came for ``reacquire_s`` (3 s), the levels are learnt again from the last ``learn_s`` seconds
  (signal level: their largest candidate, noise level: half the median of the candidates under half
  of it, at least ``npk_floor`` of it, as the warm-up learns them) and those seconds are decided again
  with them.  So artefact at the start of a recording, or an electrode that moves, costs at most
  about ``reacquire_s`` of beats.  In a stream's first ``settle_s`` (10 s), where the levels were learnt from its
  first ``learn_s``, which may be all artefact (electrodes settling), the wait is ``reacquire_start_s`` (2 s): 2 s of
  broadband noise at the start of a 128 Hz record cost its first three clean beats and a pause alarm with 3 s.  Later
  it stays 3 s (2 s throughout found "beats" in the baseline of a lead II that had lost its complexes, and cost
  +P on the hardest MIT-BIH DS1 stretches: the guards in tests/test_second_lead.py and tests/test_records.py).
  MIT-BIH DS1, the SVDB development half and NSTDB 118 gave the same FN and FP with the start rule as without.
  The levels are only learnt again from a window whose largest
  candidate stands out (``peak_ratio`` times the median trough of the envelope between its
  candidates): a window of noise alone (asystole with baseline noise) keeps the levels, and its noise
  is not counted as beats.  Nor, after a stream's first ``settle_s``, from a window whose largest candidate is under
  ``relearn_floor`` (1/6) of the median level of the last 8 QRS, until ``relearn_floor_s`` (60 s) after the last
  QRS: the P waves of a ventricular standstill (QRS stopped, atria still beating) have about a tenth of a QRS's
  RMS slope, and re-acquisition had learnt them as the new QRS level, so the asystole alarm never came (CinC 2015
  a386s, a true asystole alarm missed; with the floor it is raised, and no CinC record gains a false one).  An
  amplitude fall of 4x (a quarter of the level) stays above the floor; a fall of more than 6x is taken for no QRS
  (asystole, the HIGH alarm: where the signal cannot tell, the monitor errs towards it) until the floor lapses.
  No floor is set while at least ``relearn_floor_noisy`` (half) of those 8 QRS lay in stretches rated noisy (their
  beats marked noisy: :attr:`QRSDetector.artefact`, which the Segmenter answers from
  :mod:`ecgmon.segmentation.sqi`): a train of large pulses or electrode motion taken for QRS had set it, and the
  real QRS after them, under a sixth of the artefact's level, were not learnt for 60 s (a newcomer, session 33:
  10 s of 10 mV pulses before SVDB 842, asystole raised over 55 s of clean ECG; 5 s of 3 mV motion in MIT-BIH 101's
  V1, no beat on that lead for the remaining 70 s).  A ventricular standstill's QRS before it come in clean signal.
  Nor, where the last 8 QRS stand ``relearn_floor_rise`` (6) times or more above the median level of an earlier
  block of 8 QRS found within ``relearn_floor_s`` before the re-acquisition (a rise no heart makes within a minute),
  is the floor above a sixth of the lowest such block's level (session 37): electrode taps (40 ms pulses of 4-8 mV
  every 1.5-4 s) that the index rated clean (they stand out of the baseline as QRS do), taken for QRS on a lead with
  small complexes, had set the floor four times above the lead's own QRS (a newcomer's MIT-BIH 205 with taps on V1
  for 37 s, 24 times its QRS' level: no beat on that lead for 60 s after them, and a false asystole alarm over 80
  bpm).  Taken without that condition (the lowest block's level always), a reviewer's standstills after the whole
  ECG had shrunk to 40-50 % for 9 beats, or had grown 2-2.5 times, within the minute before, and CinC a386s with its
  earlier QRS a third smaller, had their P waves taken for beats: no asystole alarm, or one that cleared during the
  standstill; ordinary changes of size keep the last 8 QRS' floor.
  Each QRS's verdict is kept once its rating is made (the ratings themselves are kept 30 s: a floor had come back
  after 26 s without QRS, a reviewer's finding); one not rated yet, which only a push longer than ``reacquire_s``
  leaves at a re-acquisition, counts as clean until it is (MIT-BIH 112 after 6 s of pulses, pushed in 9 s packets:
  5 beats later than in 0.1-6 s packets).  Nor from QRS found in the stream's first ``settle_s``: the floor is the
  median level of those of the last 8 QRS found after it, and there is none until ``relearn_floor_beats`` (4) are.
  Electrode motion at a stream's start is spiky, so the signal-quality index, which has no clean ECG of the stream to
  compare it with, rated 8 s of 3 mV motion before MIT-BIH 207's small ventricular escape rhythm clean; the motion
  taken for QRS set the floor and the real QRS, a sixth of its level, were not learnt: asystole and pause alarms over
  a 60 bpm rhythm for 10 s, and 40 of 41 beats missed with the rhythm at a quarter of its size (a newcomer, session
  35).  But the last QRS of the first seconds do set it where they are a rhythm (:meth:`QRSDetector._early_rhythm`:
  at least ``relearn_floor_rhythm`` (6), none in a stretch rated noisy, each interval within ``rhythm_rr_tol`` (25
  %) of the one before it, their levels within ``rhythm_level_ratio`` (1.5) of each other): a heart's rhythm is, motion
  and taps at a stream's start (irregular, of changing size) are not.  Without it a standstill 5-14 s after a stream
  started had its P waves learnt as QRS, and neither pause nor asystole was raised (a reviewer, session 49: 5 s
  standstills at 9 and 12 s; a standstill at 15 s was raised).  That floor lapses ``rhythm_floor_s`` (12 s) after the
  last QRS, not ``relearn_floor_s``: a regular train of narrow pulses at a stream's start (a pacing system analyser,
  a simulator before the patient), rated clean, is a rhythm too, and the real QRS after it, under a sixth of its level,
  were not learnt for a minute (asystole over a sinus rhythm; as are real QRS that shrink more than 6 times in those
  seconds: a reviewer, session 50); with the lapse, about 10 s.  Through the
  monitor's protocols MIT-BIH DS1, the SVDB development half and NSTDB 118 gave the same QRS figures, and they, the
  VFDB and the CinC 2015 development records the same alarms, with this rule as without (docs/recordings.md,
  session 35).
  Every re-acquisition of MIT-BIH DS1 and the SVDB development half learnt a level above 1/5 of the one before,
  except one in each: 116 at 1361 s, an amplifier's recovery, where the floor costs the first two small beats after
  the block (the artifact windows' hold on the asystole timer covers them); SVDB 850 at 1588 s, a ventricular
  standstill of 12.5 s whose P waves had been taken for five beats (its asystole alarm now sounds).  Chosen from the
  re-acquisitions' level ratios on those records and on CinC 2015 dev (in-sample there).

P waves without QRS (session 59; built, **off by default**: ``p_guard``, see the review at the end of this paragraph):
the floor above tells a ventricular standstill's P waves from QRS by size alone,
and lapses.  A newcomer (session 58) flattened the QRS and T waves of MIT-BIH 101, 109, 118, 119 and 205 for 30-90 s,
their P waves kept (0.1-0.35 mV): the P waves were counted as beats once the floor lapsed 60 s after the last QRS, at
once where a stream had begun 10 s before the standstill (the floor of a stream's first seconds lapses after 12 s, or
its P waves stood above a sixth of the QRS level), or after one artefact taken for a QRS had let search-back walk the
levels down to them; asystole cleared 0-60 s into the standstill and a rate of 65-90 bpm was shown.  Monitors keep P
waves out by an amplitude floor alone (0.15 mV, Hamilton's open-source detector's ``MIN_PEAK_AMP``); no published
P-wave rejection rule was found (a helper's search).  A candidate is *P-like* (:meth:`QRSDetector._p_like`) where all
of these hold: its level per raw peak to peak over the 200 ms before its envelope peak is at most ``p_f_max`` (16.5
per s: a rounded wave; narrow QRS 15-22, P waves 9-15); that peak to peak is at most ``p_a_max`` (0.5 mV: monitors
must count QRS of 0.5-5 mV; a wide ventricular complex is as slow as a P wave, and larger); the largest deflection of
the 30 Hz low-pass over those 200 ms is at least ``p_w50_s`` (35 ms) wide at half its height, from the median of the
0.35-0.2 s before the peak; and no repolarisation follows (the 40 ms running mean over ``p_t_s``, 0.06-0.27 s after
the peak, never ``p_t_max``, 0.08 mV, from its chord: a QRS's T wave, which also tells a wide ventricular complex
from a P wave).  Measured by a helper (``/tmp/pwr``, outside the repository; thresholds chosen on the same records,
in-sample, with the repolarisation window to 0.40 s): 91-93 % of 695 P waves of those standstills P-like (69-92 %
for 119's tall steep ones), with an atrial repolarisation wave of 40-80 uV and noise modelled after them; real QRS
P-like: MIT-BIH DS1 2 of 45,789 N beats, SVDB development half 3 of 4,604 S and 3 of 5,161 V beats (828); VFDB's second
lead 1,075 of 20,964 N beats (1,048 in 420, whose second lead's QRS are 0.15-0.25 mV with 20-50 uV T waves), and CinC
2015 v197l's sinus rhythm on both leads.  So the rule cannot tell a stream that starts in a standstill from such a lead,
and it holds only where fewer than ``p_own`` (half) of the lead's own last ``p_snips`` (4) QRS were P-like (judged
from the raw samples kept around each), and only once no QRS came for the re-acquisition's wait: then the guard is
on, and no P-like candidate is a QRS (search-back takes none) or sets a level, until ``p_resume`` (3) QRS at the
re-acquisition floor's level or above (or a sixth of the median level of the kept QRS) have come with no P wave
refused since the count began (a QRS under that level neither counts nor resets it).  It has no time limit: QRS that
come back under that level keep it on.  Search-back in a running rhythm is left alone: with the guard on there too (the
first form), CinC 2015 v842s lost 7 of its ventricular beats on lead I (0.44 mV, 80 ms, no visible T wave there,
taken by search-back before) and its true VT alarm (score 81.91 -> 80.42), and MIT-BIH 201 an aberrated APC.  A QRS that
falls to a tenth keeps its shape and T wave (not P-like): it is learnt as the floor lets it, as before.  Left: a
stream that starts in a standstill (its P waves are its first "QRS"); P waves that are not P-like (about 1 in 10:
narrow, or on a moving baseline) are still beats, so an artefact and two of them can clear asystole for 4 s; and the
features need 0.27 s after a candidate, within the decision's look-ahead (``dominance_s``, 0.3 s).
Measured on (in-sample) development data with the guard on: ``evaluate --protocol qrs`` on DS1 and the SVDB
development half, ``--protocol nstdb`` on NSTDB 118, ``--protocol ec13``, ``--protocol cinc2015`` (81.91) and
``--protocol vfdb`` on DS1, SVDB and NSTDB: every figure the same; ``--protocol vfdb`` on VFDB dev: 423's asystole
episode held without the flap (raised once, not twice) but cleared 6 s into the nodal rhythm after it, and two false
alarms more in its NOISE stretch (32 -> 34 false lethal).  A reviewer (helper 129) confirmed the gain on 10 new
standstills made the same way from other DS1 records (held to their end in all 10; before, cleared at 157-163 s in
9) and broke it: a slow ventricular escape rhythm after 6 s of asystole, made of real wide beats (207's escape, 109's
LBBB, 208's and 124's PVCs) scaled to 0.4-0.5 mV after MIT-BIH 112, whose T waves shrink with them under
``p_t_max``, is P-like: 0-3 of 38 beats found (37-38 before) for 207's and 208's at 0.4-0.5 mV and 109's and 207's
escape beats at 0.4 mV (at 0.5 mV 109's and 207's escape beats were all found, 124's 15 of 38), asystole held over
the whole rhythm, at 128-1000 Hz and with two leads; MIT-BIH 109
(LBBB) falling to 0.3 mV after a 5 s gap: 314 of 1,174 beats and asystole on 614 of 840 s over 85 bpm (one 3 s
asystole before); tests/data/mitdb-escape's real escape rhythm after motion at a stream's start, scaled to 0.42 mV:
sensitivity 0.975 -> 0.075; every DS1 record scaled to 0.4 mV with one 4 s pause (their first 600 s): missed beats
27 -> 68.  Size, width, slope and the T wave do not tell a small wide QRS from a P wave; what may: the rate (a
standstill's P waves come at the sinus rate, 50-130/min, an escape rhythm under 40), and likeness to the lead's own
QRS before the loss (a QRS that shrank keeps its shape); a first quick form of both lost most of the gain
(docs/alarms.md, session 59).  Reviewer's harness: ``/tmp/rv59work`` (outside the repository).

Pacemaker pulses (at sampling rates of at least ``pace_min_fs``, 200 Hz; below that a pulse of 0.5-2 ms is one
sample, not told from a narrow R wave): a pulse is a few samples of very steep signal that reverses at once, the
QRS detector's 5-20 Hz band hardly sees its shape but its envelope rises on it, so a paced patient's pulses were
counted as beats even when the heart did not follow them (loss of capture: CinC 2015 a670s and a639l, true asystole
alarms missed with the pulses read as a paced rhythm at 70 bpm).  Within ``pace_search_s`` (200 ms) before each
candidate's envelope peak, a pulse is a raw first difference followed within ``pace_reversal_s`` (8 ms) by one of
the opposite sign, both at least ``pace_ratio`` (3) times the steepest band-passed slope within ``pace_local_s``
(50 ms) and ``pace_slope`` (2) times the band-passed slope of the candidate and of the last QRS (median of 8), with a
swing over its flanks of at least ``pace_amp`` (half) the raw peak to peak of the last QRS.  The candidate's level
is then measured again on the raw signal with each pulse blanked (linear interpolation from ``pace_blank_s``, 24 ms
before it to 60 ms after: the pulse and its ringing).  Once ``pace_beats`` (3) QRS with pulses are known, the last
within ``pace_memory_s`` (60 s), and while at least ``pace_share`` (half) of the last 8 QRS had pulses (a paced
rhythm), a candidate with pulses whose blanked level is under ``pace_frac`` (0.6) of the median blanked level of
those paced QRS is the pulses alone: neither QRS nor noise (search-back never takes it).  Otherwise the usual rules
decide on the candidate as it is (a pacemaker that starts pacing: its first beats, with whatever level).  This is
pulse rejection from the sampled ECG, as a heart-rate meter must do (IEC 60601-2-27, EC13's pacemaker pulse
rejection), not a device's pace flag: monitors detect pulses in hardware at kHz rates and a pace channel in the
device's stream would be better (docs/mqtt.md).  Chosen on the CinC 2015 development third (in-sample there: the
only paced records we have); MIT-BIH DS1, NSTDB 118, EC13 and the VFDB development half give the same detections with
it as without, and the SVDB development half (128 Hz) is below ``pace_min_fs``.

Detections are absolute sample indices of envelope peaks, emitted in increasing order, each once.

Latency: a candidate is decided when ``dominance_s`` (300 ms) of envelope after it has arrived (as
with the first detector; pre-blanking looks only within that look-ahead, so it adds none); the
envelope peak itself lies about 50-100 ms after the QRS's steepest slope (moving-average and band-pass
delay).  So a QRS is reported about 0.35-0.4 s after it (plus the chunk length; the window beat
representation then waits for its ``post_s``); a QRS found by search-back is reported up to 1.66 RR
later, and one found on re-acquisition up to
``reacquire_s`` later.  Needs the first ``learn_s`` (2 s) of a stream to learn its levels.

References: Pan J, Tompkins WJ. A real-time QRS detection algorithm. IEEE Trans Biomed Eng
32(3):230-236 (1985).  Hamilton PS, Tompkins WJ. Quantitative investigation of QRS detection rules
using the MIT/BIH arrhythmia database. IEEE Trans Biomed Eng 33(12):1157-1165 (1986).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
from scipy.ndimage import maximum_filter1d, minimum_filter1d
from scipy.signal import butter, sosfiltfilt

from ecgmon.segmentation.filters import CausalFilter, MovingAverage

__all__ = ["DetectorConfig", "QRSDetector", "reversals"]


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    """Times in seconds; fractions of levels in the RMS-slope (square root of the envelope) domain."""

    band_hz: tuple[float, float] = (5.0, 20.0)
    # notches at these mains frequencies after the band-pass (:func:`~ecgmon.segmentation.filters.mains_notch`); none
    # by default: tried in session 33 (docs/recordings.md, "Mains interference"), they moved decisions at the edges of
    # the rules on records without hum (CinC 2015 dev 80.07 -> 79.37); the Segmenter's QRS floor
    # (SegmenterConfig.min_qrs, interference_ratio) keeps hum from being taken for beats instead
    mains_hz: tuple[float, ...] = ()
    mwi_s: float = 0.1  # moving-window integration
    peak_half_s: float = 0.15  # a candidate is the envelope's largest value within +/- this
    dominance_s: float = 0.3  # ... and at least ``dominance`` of the largest within +/- this (the look-ahead)
    dominance: float = 0.6
    # ... and not followed within blank_s by a larger envelope peak whose band-passed slope is steeper (a P wave
    # before its QRS; Hamilton's pre-blanking: of two peaks within 200 ms the larger wins)
    blank_s: float = 0.2
    blank_ratio: float = 0.9  # ... larger: by more than 1 / this (RMS slope)
    blank_after_s: float = 0.4  # ... for a candidate at least this long after the last QRS (no P wave fits earlier)
    blank_min_rr_s: float = 0.5  # ... and only while the mean RR is at least this (120 bpm), or not yet known
    # at high rates both windows shrink with the mean RR (at most these shares of it), so that a complex smaller than
    # its neighbours (a wide tachycardia's humped envelope) is not hidden by them
    peak_half_rr: float = 0.3
    dominance_rr: float = 0.5
    refractory_rr: float = 0.6  # ... and so does the refractory period (a wide complex's jittering peak)
    scale_below_s: float = 0.4  # ... while the mean RR is shorter than this (150 bpm)
    # while the mean RR is under this (100 bpm), the rising edge the dominance look-ahead ends on (the next QRS of a
    # fast irregular rhythm) dwarfs no candidate: atrial fibrillation's smaller beats 0.3 s before a larger one
    edge_trim_below_s: float = 0.6
    refractory_s: float = 0.18  # Pan-Tompkins' 200 ms would cap the rate at 300 bpm exactly
    t_wave_s: float = 0.36
    t_slope_frac: float = 0.5
    t_rr: float = 0.8  # ... unless it comes at or after this share of the mean RR (a tachycardia's next QRS)
    slope_s: float = 0.15  # the band-passed slope of a candidate: its steepest within this before the peak
    # in a tachycardia, a hump whose half-window holds only the flank of a larger hump beyond it stays a candidate
    # where the next QRS is due and its steepest slope is at least this share of that hump's (module docstring)
    apex_slope: float = 0.8
    apex_regular: float = 0.15  # ... and the rhythm regular: the last RR intervals within this of their median, ...
    apex_irregular: int = 1  # ... all but this many of them
    thr_frac: float = 0.25
    searchback_rr: float = 1.66
    searchback_frac: float = 0.5
    # search-back also after searchback_rr times the shortest regular RR: the shortest of the last rr_beats RR that at
    # least regular_beats of them share within regular_tol of it (module docstring, "missed beats that recur"), for a
    # candidate at least early_slope of the median steepest slope of the last QRS; 0 beats: off
    regular_beats: int = 3
    regular_tol: float = 0.12
    early_slope: float = 0.4
    # after this many QRS in a row found only by search-back, the levels are learnt again from the last learn_s (the
    # re-acquisition's rule, its floor included) without deciding those seconds again; 0: off
    relearn_sb: int = 3
    relearn_sb_min: int = 3  # ... from a window of at least this many candidates (fewer say too little of the noise)
    # search-back's T-wave window after a long cycle: Bazett's QT at this QTc (s) over the RR before the last QRS
    # (a bradycardia's T wave comes 0.4-0.55 s after its QRS, past t_wave_s), at most searchback_qt_max_s
    searchback_qtc: float = 0.40
    searchback_qt_max_s: float = 0.6
    suspect_frac: float = 0.75  # noise candidates count at most as this share of the threshold in the noise level
    # candidates past the refractory period passed over (a T wave by the slope rule, implausible, or under the
    # threshold) at this share of the threshold or more are reported (QRSDetector.passed): a second lead may show a
    # QRS there (ecgmon.segmentation.agreement, insert_passed); 0: none reported
    passed_frac: float = 0.5
    rr_beats: int = 8
    rr_init_s: float = 1.0  # the mean RR assumed before two QRS are found
    min_rr_s: float = 0.18  # RR intervals outside [min, max] do not enter the mean RR (333 .. 24 bpm)
    max_rr_s: float = 2.5
    learn_s: float = 2.0  # warm-up, and the window the levels are learnt again from
    reacquire_s: float = 3.0
    # ... and in a stream's first settle_s, where the levels were learnt from its first learn_s (which may be all
    # artefact: electrodes settling), after reacquire_start_s
    reacquire_start_s: float = 2.0
    settle_s: float = 10.0
    # a re-acquisition after settle_s learns no signal level under relearn_floor of the median level of the last
    # QRS (a drop of 4x stays trackable; P waves of a ventricular standstill are not beats) until relearn_floor_s
    # after the last QRS
    relearn_floor: float = 1 / 6
    relearn_floor_s: float = 60.0
    # ... and none while at least this share of those QRS lay in stretches the signal-quality index rated noisy
    # (QRSDetector.artefact; the Segmenter's): a train of large pulses or motion taken for QRS set no floor
    relearn_floor_noisy: float = 0.5
    # ... and none from QRS found in a stream's first settle_s: the floor is the median level of those of the last 8
    # QRS found after it, at least relearn_floor_beats of them (a loud start the signal-quality index did not call
    # noisy set it: session 35); 0: every one of them counts
    relearn_floor_beats: int = 4
    # ... unless the last QRS are a rhythm (_early_rhythm): at least relearn_floor_rhythm of them (0: off), none noisy,
    # each interval within rhythm_rr_tol of the one before it, levels within rhythm_level_ratio of each other
    relearn_floor_rhythm: int = 6
    rhythm_rr_tol: float = 0.25
    rhythm_level_ratio: float = 1.5
    # ... that floor lapses this long after the last QRS (relearn_floor_s's 60 s cost a minute of false asystole over
    # a sinus rhythm after 6 s of regular 40 ms pulses at a stream's start: a reviewer, session 50)
    rhythm_floor_s: float = 12.0
    # ... and where that level is at least relearn_floor_rise times the median level of an earlier block of 8 QRS
    # (newest first) found after settle_s within relearn_floor_s before the re-acquisition, blocks mostly in noisy
    # stretches left out, the level is the lowest such block's: a rise no heart makes within a minute, artefact taken
    # for QRS (electrode taps); 0: off.  Smaller changes (a ventricular standstill after the QRS shrank or grew 2-4
    # times, a reviewer's, session 37) keep the last 8 QRS' floor
    relearn_floor_rise: float = 6.0
    peak_ratio: float = 8.0  # white noise's envelope peaks stand about 4x above its troughs
    npk_floor: float = 0.125  # the noise level learnt is at least this share of the signal level
    # under sustained noise (noise level over noisy_npk of the signal level) a candidate earlier than early_rr of the
    # mean RR must be QRS-sized: at least early_frac of the signal level or early_frac of the last QRS's slope
    noisy_npk: float = 0.25
    early_rr: float = 0.7
    early_frac: float = 0.9
    early_min_rr_s: float = 0.4  # ... and only while the mean RR is at least this (150 bpm)
    # pacemaker pulses (module docstring): a candidate's levels are measured on the signal with the pulses found
    # within pace_search_s before its peak blanked; at sampling rates of at least pace_min_fs (0: off)
    pace_min_fs: float = 200.0
    pace_search_s: float = 0.2
    pace_reversal_s: float = 0.008  # a pulse's two flanks: opposite first differences at most this far apart ...
    pace_ratio: float = 3.0  # ... each at least this times the steepest band-passed slope within pace_local_s ...
    pace_local_s: float = 0.05
    pace_slope: float = 2.0  # ... and this times the candidate's band-passed slope (``_Cand.s``)
    pace_amp: float = 0.5  # ... and a swing over its flanks of at least this share of the last QRS' (raw peak to peak)
    pace_blank_s: tuple[float, float] = (0.024, 0.06)  # blanked from this before the pulse to this after it
    pace_context_s: float = 0.6  # the band-pass of the blanked signal starts this before the search window
    # a candidate with pulses is the pulses alone (no QRS, no noise: search-back never takes it) when its blanked
    # level is under pace_frac of the median blanked level of the last paced QRS (at least pace_beats of them, the
    # last within pace_memory_s)
    pace_frac: float = 0.6
    pace_beats: int = 3
    pace_share: float = 0.5  # ... and while at least this share of the last 8 QRS had pulses (a paced rhythm)
    pace_memory_s: float = 60.0
    # the two edges of one wide complex (module docstring, "wide complexes"): a candidate within t_wave_s after a QRS
    # is that QRS's other edge where the raw signal over the edge_s before each envelope peak moved one way by at
    # least edge_frac of its peak to peak, the two ways opposite, the signal between them not back past halfway
    # (0: off) ...
    edge_s: float = 0.2
    edge_frac: float = 0.6
    edge_clean: float = 0.9  # ... the cleaner of the two at least this (0: any)
    # ... and neither a step: no sample to sample difference over this share of its net change (a square pulse, a
    # switching transient; a ventricular edge takes 20 ms or more, 3 samples even at 128 Hz)
    edge_step: float = 0.5
    edge_undo: float = 0.3  # ... and the two net changes summing to at most this share of the larger
    # P waves (module docstring, "P waves without QRS"): a candidate is P-like where its level per raw peak to peak
    # over the 200 ms before it is at most p_f_max (1/s), its largest deflection (30 Hz low-pass) at least p_w50_s wide
    # at half its height, no repolarisation follows it (the 40 ms running mean over p_t_s after it never p_t_max (mV)
    # from its chord) and that peak to peak is at most p_a_max (mV: monitors must count QRS of 0.5-5 mV).  Where the
    # lead's own last QRS were not P-like (under p_own of the last p_snips) and no QRS came for the re-acquisition's
    # wait, none is a QRS (search-back takes none) or sets a level until p_resume QRS have come.  Off (False) by
    # default: a review (session 59) found it refuses small wide beats whose T waves are small too (escape rhythms
    # and low-voltage QRS after a loss); kept for the detector alone and the next attempt (module docstring)
    p_guard: bool = False
    p_f_max: float = 16.5
    p_w50_s: float = 0.035
    p_t_s: tuple[float, float] = (0.06, 0.27)
    p_t_max: float = 0.08
    p_a_max: float = 0.5
    p_snips: int = 4
    p_own: float = 0.5
    p_resume: int = 3


@dataclass(slots=True)
class _Cand:
    p: int  # absolute sample index of the envelope peak
    v: float  # RMS slope at the peak (square root of the envelope)
    s: float  # steepest |band-passed difference| in the ``slope_s`` before the peak
    trough: float  # the lowest RMS slope between the previous candidate and this one
    pv: float | None = None  # the RMS slope with the pacemaker pulses before it blanked (None: no pulse)
    # the raw signal's net change over the edge_s before the peak as a share of its peak to peak there (-1 .. 1; nan:
    # not known): near +/-1 on one edge of a wide monophasic complex, near 0 over a whole QRS
    edge: float = math.nan
    rise: float = math.nan  # ... that net change (the raw signal's unit)


def _median(v: Sequence[float]) -> float:
    """The median of a few numbers (``np.median``'s value, without its cost)."""
    srt, q = sorted(v), len(v)
    return srt[q // 2] if q % 2 else (srt[q // 2 - 1] + srt[q // 2]) / 2


def _peak_max(seg: np.ndarray, i: int, n: int) -> float:
    """The largest envelope value in ``seg[i:i + n + 1]`` less the rising edge the window ends on: that edge belongs
    to a peak beyond the window (the next QRS of a fast irregular rhythm), which dwarfs nothing within it."""
    j = min(i + n, len(seg) - 1)
    while j > i and seg[j] > seg[j - 1]:
        j -= 1
    return float(seg[i:j + 1].max())


def _flank_apexes(seg: np.ndarray, i: int, half: int, apex: int, reach: int) -> list[int] | None:
    """The apexes (each the largest within +/- ``apex`` of itself) of the humps whose flanks rise over ``seg[i]``
    within +/- ``half`` of ``i`` from beyond it, looked for within +/- ``reach`` (>= ``half``) of ``i`` only (the
    samples every chunking has there: the detections do not depend on it): None where an apex within the half-window
    is larger than ``seg[i]`` or a flank still rises at ``reach``."""
    r0, r1 = i - reach, i + reach + 1
    if r0 < 0 or r1 > len(seg):  # a stream's first samples
        return None
    w = seg[r0:r1]
    mx = maximum_filter1d(w, size=2 * apex + 1, mode="constant", cval=-np.inf)
    lo, hi = reach - half, reach + half + 1  # the half-window, in w
    inner = w[lo:hi]
    if np.any((inner > w[reach]) & (inner >= mx[lo:hi])):
        return None
    out = []
    if w[hi - 1] > w[reach]:  # the right flank: the apex of the hump it rises to
        j = hi - 1 + int(np.argmax(w[hi - 1:]))
        if j == len(w) - 1:
            return None
        out.append(r0 + j)
    if w[lo] > w[reach]:
        j = int(np.argmax(w[:lo + 1]))
        if j == 0:
            return None
        out.append(r0 + j)
    return out if out else None


def reversals(tail: np.ndarray, x: np.ndarray, thr: float | np.ndarray, m: int,
              swing: float | np.ndarray = 0.0) -> np.ndarray:
    """Where a pacemaker pulse's flank may be: ``tail`` ``(B, 2 m + 3)`` each stream's last raw samples, ``x``
    ``(B, n)`` its next ones, ``thr`` the first difference a flank needs and ``swing`` the peak to peak the samples
    within ``m + 1`` of it need (per stream, or one) -> ``(B, n)`` bool for the ``n`` samples from ``m + 1`` before
    ``x``'s first (the last ``m + 1`` of ``tail``, then ``x`` but its last ``m + 1``), True at each whose raw first
    difference reaches ``thr`` and reverses (one of the opposite sign, also reaching it) within ``m`` samples before
    or after it.  Each is judged once the ``m + 1`` samples after it have come: judged as far as ``x`` went, a pulse
    whose swing builds over the samples after its spike was not marked in a chunk's last ``m`` samples, and the
    check that trusts the marks passed it (a reviewer, session 52: pulses without capture at 1000 Hz taken for QRS,
    8 with 0.05 s pushes, 2 with 0.25 s, none with 10 s)."""
    ext = np.concatenate([tail, x], axis=1)
    d = np.diff(ext, axis=1)  # d[:, j]: ext[:, j + 1] - ext[:, j]; sample ext[:, j] has the flank d[:, j - 1]
    th = np.asarray(thr, dtype=np.float64).reshape(-1, 1)
    sg = np.where(d >= th, 1, 0) - np.where(d <= -th, 1, 0)
    hit = np.zeros(d.shape, dtype=bool)
    for k in range(1, m + 1):
        pair = sg[:, :-k] * sg[:, k:] < 0
        hit[:, :-k] |= pair
        hit[:, k:] |= pair
    if hit.any():
        size = 2 * m + 3  # ext[j - m - 1 .. j + m + 1] around the flank d[:, j] (ext[j] to ext[j + 1])
        ptp = (maximum_filter1d(ext, size=size, axis=1, mode="nearest")
               - minimum_filter1d(ext, size=size, axis=1, mode="nearest"))[:, :-1]
        hit &= ptp >= np.asarray(swing, dtype=np.float64).reshape(-1, 1)
    n = x.shape[1]
    return hit[:, m + 1:m + 1 + n]  # the flanks of ext[:, m + 2:m + 2 + n]


class QRSDetector:
    """Push samples, get the absolute indices of newly decided QRS (envelope peaks), in increasing order.

    ``push(x)``: ``x`` 1-D finite samples (any unit, any chunk length) -> list of int.  Not thread-safe;
    one detector per stream.  ``keep_from``: the earliest sample index a later push may still report a
    QRS at (a caller's buffer must keep the signal from there)."""

    def __init__(self, fs: float, cfg: DetectorConfig = DetectorConfig()) -> None:
        self.fs, self.cfg = fs, cfg
        self.half = max(1, round(cfg.peak_half_s * fs))
        self.dom = max(self.half, round(cfg.dominance_s * fs))
        self.blank = min(self.dom, round(cfg.blank_s * fs))
        self.blank_after = round(cfg.blank_after_s * fs)
        # the smallest the RR-scaled half-window can be (the mean RR is at least min_rr_s)
        self.half_lo = max(1, min(self.half, round(cfg.peak_half_rr * cfg.min_rr_s * fs)))
        self.learn_n = round(cfg.learn_s * fs)
        self.refractory = round(cfg.refractory_s * fs)
        self.t_wave = round(cfg.t_wave_s * fs)
        self.slope_n = max(2, round(cfg.slope_s * fs))
        # envelope kept before the first unsearched sample: the max filter's left half-window and the slope window
        # (dom + slope_n + 1), and the 2 dom a candidate's trough looks back (_checked)
        self.keep_back = max(2 * self.dom, self.dom + self.slope_n + 1)
        self.reacquire = round(cfg.reacquire_s * fs)
        self.reacquire_start = round(cfg.reacquire_start_s * fs)
        self.settle = round(cfg.settle_s * fs)
        self.bp = CausalFilter.bandpass(fs, *cfg.band_hz, notch_hz=cfg.mains_hz)
        self.ma = MovingAverage(round(cfg.mwi_s * fs))
        self.env = np.zeros(0)  # envelope from env_start
        self.slope = np.zeros(0)  # |band-passed difference|, aligned with env
        self.env_start = 0
        self.total = 0
        self.next_p = 0  # first absolute index not yet searched for candidates
        self.prev_cand = 0  # the last candidate's absolute index (its trough's left end), 0 before one
        self._prev_last: float | None = None
        # decision state
        self.spk = self.npk = 0.0
        self.learnt = False
        self.last_qrs: int | None = None
        self.last_slope = 0.0
        self.learnt_at = 0  # where the levels were last learnt (re-acquisition counts from here)
        self.rr: deque[int] = deque(maxlen=cfg.rr_beats)
        self.noise: list[_Cand] = []  # noise candidates since the last QRS (search-back)
        # the sample at which each QRS the last decide() returned was decided: the look-ahead after the candidate
        # being decided (a QRS found by search-back or by learning the levels again comes with a later one)
        self.decided_at: list[int] = []
        # the candidates the last decide() passed over at passed_frac of the threshold or more (their envelope peaks)
        self.passed: list[int] = []
        self.recent: deque[_Cand] = deque()  # every candidate of the last learn_s (re-acquisition)
        self.relearns = 0
        self.sb_run = 0  # QRS in a row found by search-back (relearn_sb)
        self.sb_relearns = 0
        # (sample, level) of the last QRS (the re-acquisition floor)
        self.qrs_v: deque[tuple[int, float]] = deque(maxlen=8)
        # ... and of every QRS of the last relearn_floor_s (an earlier level of the lead's: relearn_floor_rise)
        self.qrs_hist: deque[tuple[int, float]] = deque(maxlen=4096)
        # whether the QRS at a sample (this detector's index) is a beat marked noisy (None: its rating is not made
        # yet): set by the caller that rates the signal's quality (the Segmenter: segmentation.sqi); None: nothing is
        # known of it.  Each verdict is kept once given (qrs_noisy, by the QRS's sample: settle_verdicts)
        self.artefact: Callable[[int], bool | None] | None = None
        self.qrs_noisy: dict[int, bool] = {}
        self.bridges: list[tuple[int, int]] = []  # bridged stretches of lost samples [start, stop) (bridge())
        # pacemaker pulses: the raw samples from raw_start (to total), kept for the candidates' pulse check
        self.pace = cfg.pace_min_fs > 0 and fs >= cfg.pace_min_fs
        # the raw samples are kept for the pulse check and for the edges of wide complexes (_edge)
        self.keeps_raw = self.pace or cfg.edge_frac > 0 or cfg.p_guard
        self.edge_n = max(2, round(cfg.edge_s * fs))
        self.last_edge = (math.nan, math.nan)  # the last QRS's edge and rise (_Cand.edge, _Cand.rise)
        self.other_edges = 0  # candidates taken for the other edge of the QRS before them
        self.edge_gap: tuple[int, int] | None = None  # (sample, gap) of the last other edge: its distance to its QRS
        # raw = _store[_beg:_end] (room kept after it: a chunk is written, not concatenated; old samples are dropped
        # only when the room runs out)
        self._store = np.empty(0)
        self._beg = self._end = 0
        self.raw_start = 0
        self.pace_m = max(1, round(cfg.pace_reversal_s * fs))
        self.pace_win = round(cfg.pace_search_s * fs)
        self.pace_local = max(1, round(cfg.pace_local_s * fs))
        self.pace_ctx = round(cfg.pace_context_s * fs)
        self.pace_blank = (max(1, round(cfg.pace_blank_s[0] * fs)), max(1, round(cfg.pace_blank_s[1] * fs)))
        self.pulses = 0  # pacemaker pulses blanked under candidates so far
        self.paced_v: deque[float] = deque(maxlen=8)  # the blanked levels of the last paced QRS
        self.paced_at = 0  # the last paced QRS
        self.qrs_paced: deque[bool] = deque(maxlen=8)  # whether each of the last QRS had pacemaker pulses
        # the band-passed slopes of the last QRS (a pulse is steeper; a hidden QRS's T wave is less steep)
        self.qrs_s: deque[float] = deque(maxlen=8)
        self.qrs_a: deque[float] = deque(maxlen=8)  # their raw peak to peak over the 0.25 s before each (a pulse's
        # swing is comparable: white noise's steep reversals at a high sampling rate are not)
        self.pace_pp = round(0.25 * fs)
        # pace_slope times the median of qrs_s (inf before a QRS): a raw first difference this steep may be a pulse
        self.pace_thr = math.inf
        self.pace_swing = 0.0  # pace_amp times the median of qrs_a
        self.steep: deque[int] = deque()  # the samples whose raw first difference reached pace_thr, recent ones
        # (end, thr, swing) of each recent keep_raw: the samples up to `end` were marked steep with those limits (the
        # pace_thr and pace_swing of that moment, which the QRS decided since may have lowered: _marks_hold)
        self.marked: deque[tuple[int, float, float]] = deque()
        self.pulse_only = 0  # candidates taken for pacemaker pulses alone
        # P waves without QRS (_p_like): the raw samples around each of the last p_snips QRS (from p_back before its
        # peak to dom after it) and whether each is P-like (None: not judged yet); the guard after a loss, on while a
        # lead whose QRS were not P-like shows no QRS, and the QRS since it
        self.p_back = round(0.35 * fs)
        self.p_lp = butter(2, min(30.0, 0.4 * fs), "lowpass", fs=fs, output="sos") if cfg.p_guard else None
        self.p_mean = max(1, round(0.04 * fs))
        self.qrs_snips: deque[tuple[int, float, np.ndarray, bool | None]] = deque(maxlen=max(1, cfg.p_snips))
        self.p_guarding = False
        self.p_since = 0  # QRS at p_level or above since the guard went on or last refused a P wave
        self.p_level = 0.0
        self.p_now = 0  # the candidate being decided (_decide)
        self.p_refused = 0  # candidates refused as P waves (search-back, or under the guard)

    @property
    def threshold(self) -> float:
        return self.npk + self.cfg.thr_frac * (self.spk - self.npk)

    @property
    def keep_from(self) -> int:
        """The earliest sample a QRS may still be reported at."""
        k = self.next_p - self.dom
        if self.noise:
            k = min(k, self.noise[0].p)
        if self.recent:
            k = min(k, self.recent[0].p)
        return k

    def push(self, x: np.ndarray) -> list[int]:
        if len(x) == 0:
            return []
        if self.keeps_raw:
            self.keep_raw(x)
        f = self.bp(x)
        d = np.empty(len(x))
        d[0] = f[0] - (f[0] if self._prev_last is None else self._prev_last)
        np.subtract(f[1:], f[:-1], out=d[1:])
        self._prev_last = float(f[-1])
        return self.push_envelope(self.ma(d * d), np.abs(d))

    @property
    def raw(self) -> np.ndarray:
        """The raw samples kept, from absolute index ``raw_start``."""
        return self._store[self._beg:self._end]

    def keep_raw(self, x: np.ndarray, steep: np.ndarray | None = None) -> None:
        """The next raw samples (those whose envelope comes next), kept for the pacemaker-pulse check of the
        candidates among them (:meth:`_paced`); :meth:`push` keeps them itself, a caller of
        :meth:`push_envelope` (:func:`ecgmon.segmentation.bank.envelopes`) before it.  ``steep``: where a pulse's flank
        may be among the ``len(x)`` samples from ``pace_m + 1`` before ``x``'s first (:func:`reversals`, which judges
        each once the samples after it have come; found here when not given, the bank finds every bed's at once): a
        candidate with none near it has no pulse, so most candidates are passed at once."""
        n = len(x)
        if self._end + n > len(self._store):
            self._compact(n)
        start = self.raw_start + self._end - self._beg  # x[0]'s absolute index
        if steep is None and self.pace_thr < math.inf and n:
            steep = np.flatnonzero(reversals(self.raw_tail(x[0])[None, :], x[None, :], self.pace_thr, self.pace_m,
                                             self.pace_swing)[0])
        if self.pace and n:
            keep = self.next_p - self.dom - self.pace_win - 2
            self.marked.append((start + n - self.pace_m - 1, self.pace_thr, self.pace_swing))
            while self.marked[0][0] < keep:
                self.marked.popleft()
            if steep is not None and len(steep):
                self.steep.extend((steep + start - self.pace_m - 1).tolist())
                while self.steep[0] < keep:
                    self.steep.popleft()
        self._store[self._end:self._end + n] = x
        self._end += n

    def _compact(self, n: int) -> None:
        """Room for ``n`` more raw samples: the samples no candidate's check needs any more dropped, the rest moved
        to the start of a store twice their size."""
        keep = self.next_p - self.dom - self.pace_ctx - self.pace_win - self.half - 2
        if self.cfg.p_guard:  # the candidates a re-acquisition may learn from, each from p_back before it (_p_like)
            keep = min(keep, self.next_p - self.dom - self.learn_n - self.p_back - 2)
        drop = min(max(0, keep - self.raw_start), self._end - self._beg)
        kept = self._store[self._beg + drop:self._end]
        st = np.empty(max(2 * (len(kept) + n), 1024))
        st[:len(kept)] = kept
        self._store, self._beg, self._end = st, 0, len(kept)
        self.raw_start += drop

    def raw_tail(self, first: float) -> np.ndarray:
        """The last ``2 pace_m + 3`` raw samples kept (``first``, the next chunk's first sample, standing in for those
        not there yet): the look-back :func:`reversals` needs across a chunk's start."""
        k = 2 * self.pace_m + 3
        t = self._store[max(self._beg, self._end - k):self._end]
        return t if len(t) == k else np.concatenate([np.full(k - len(t), t[0] if len(t) else first), t])

    def push_envelope(self, e: np.ndarray, slope: np.ndarray) -> list[int]:
        """The decision stage alone: ``e`` (the envelope) and ``slope`` (``|band-passed difference|``) of the
        next ``len(e)`` samples, as :meth:`push` computes them (the filter state, ``bp``, ``ma`` and
        ``_prev_last``, advanced by the caller: :func:`ecgmon.segmentation.bank.envelopes` does so for
        many beds at once) -> the QRS decided, as :meth:`push`."""
        n = len(e)
        if n == 0:
            return []
        self.env = np.concatenate([self.env, e])
        self.slope = np.concatenate([self.slope, slope])
        self.total += n
        return self.decide()

    def decide(self, peaks: list[int] | None = None) -> list[int]:
        """The decisions on the envelope appended so far (``env``, ``slope`` and ``total`` advanced by the caller, as
        :meth:`push_envelope` advances them), then the buffers trimmed.  ``peaks``: the local maxima that
        :meth:`_candidates` would find first (indices from ``max(env_start, next_p - dom)``), where a caller
        (:func:`ecgmon.segmentation.bank.decide_many`) has found them for many beds at once."""
        out: list[int] = []
        at: list[int] = []
        self.passed = []
        for c in self._candidates(peaks):
            n = len(out)
            self._decide(c, out)
            if len(out) > n:  # decided once the look-ahead after c had come (search-back and re-learning: earlier QRS)
                at += [c.p + self.dom] * (len(out) - n)
        self.decided_at = at
        self.trim()
        return out

    def trim(self) -> None:
        """Keep ``keep_back`` samples before the first unsearched sample: the max filter's left half-window, the slope
        window and the trough's look-back."""
        drop = self.next_p - self.keep_back - self.env_start
        if drop > 0:
            self.env = self.env[drop:]
            self.slope = self.slope[drop:]
            self.env_start += drop

    def _windows(self) -> tuple[int, int]:
        """(half-window, dominance look-ahead) in samples for the next candidate: ``peak_half_s`` and
        ``dominance_s``, or ``peak_half_rr`` and ``dominance_rr`` of the mean RR where those are shorter."""
        mean_rr = self._fast_rr()
        h, dom = self.half, self.dom
        if mean_rr is not None:
            h = max(self.half_lo, min(self.half, round(self.cfg.peak_half_rr * mean_rr)))
            dom = max(h, min(self.dom, round(self.cfg.dominance_rr * mean_rr)))
        if self.edge_gap is not None and self.last_qrs is not None and self.edge_gap[0] > self.last_qrs - self.half:
            # the last QRS (or the one before) had another edge: each edge's half-window ends short of the other
            h = max(self.half_lo, min(h, self.edge_gap[1] // 2))
        return h, dom

    def _refractory(self) -> int:
        """``refractory_s``, or ``refractory_rr`` of the mean RR where that is shorter (samples)."""
        mean_rr = self._fast_rr()
        return self.refractory if mean_rr is None else min(self.refractory, round(self.cfg.refractory_rr * mean_rr))

    def _edge_trim(self) -> bool:
        """Whether the dominance look-ahead leaves out the rising edge it ends on (:func:`_peak_max`): while the mean
        RR (at least 4 known) is under ``edge_trim_below_s``, where the next QRS falls within the look-ahead."""
        return len(self.rr) >= 4 and sum(self.rr) < self.cfg.edge_trim_below_s * self.fs * len(self.rr)

    def _fast_rr(self) -> float | None:
        """The mean of the last ``rr_beats`` RR intervals (samples) in a tachycardia (at least 4 of them, mean under
        ``scale_below_s``), else None."""
        if len(self.rr) < 4:
            return None
        mean_rr = sum(self.rr) / len(self.rr)
        return mean_rr if mean_rr < self.cfg.scale_below_s * self.fs else None

    def _candidates(self, peaks: list[int] | None = None) -> Iterator[_Cand]:
        """The candidates of the envelope searched so far, in order; a generator, so that the windows of each
        follow the mean RR of the QRS decided before it (the same candidates for any chunking).  ``peaks``: the
        local maxima below (indices in ``seg``), found by the caller."""
        last = self.total - self.dom - 1  # needs `dom` samples of look-ahead
        if last < self.next_p:
            return
        lo = max(self.env_start, self.next_p - self.dom)
        seg = self.env[lo - self.env_start:]
        if peaks is not None:
            self.next_p = last + 1
            yield from self._checked(seg, lo, peaks)
            return
        # local maxima over the smallest half-window the RR may set; the window of each is checked below
        # (an output array given: scipy then skips half of its per-call argument handling; the same values)
        mx = maximum_filter1d(seg, size=2 * self.half_lo + 1, output=np.empty_like(seg), mode="constant",
                              cval=-np.inf)
        a, b = self.next_p - lo, last - lo + 1
        peak = seg[a:b] == mx[a:b]
        # larger than the sample before it: a plateau yields its first sample, a flat line none
        if a == 0:
            peak[0] = False
            peak[1:] &= seg[1:b] > seg[: b - 1]
        else:
            peak &= seg[a:b] > seg[a - 1:b - 1]
        self.next_p = last + 1
        yield from self._checked(seg, lo, (np.flatnonzero(peak) + a).tolist())

    def _checked(self, seg: np.ndarray, lo: int, peaks: list[int]) -> Iterator[_Cand]:
        """The local maxima ``peaks`` (indices in ``seg``, the envelope from absolute index ``lo``) that are
        candidates: each the largest within its half-window, not dwarfed, not pre-blanked."""
        dom2 = self.cfg.dominance ** 2
        for i in peaks:
            half, dom = self._windows()
            # the largest within +/- half
            if half > self.half_lo and seg[i] < seg[max(0, i - half):i + half + 1].max() and (
                    half >= self.half or not self._own_hump(seg, lo, i, half, dom)):
                continue
            # not dwarfed by a larger candidate within the following dom samples (a P wave by its QRS; the
            # envelope is squared: dominance squared)
            if seg[i] < dom2 * (_peak_max(seg, i, dom) if self._edge_trim() else seg[i:i + dom + 1].max()):
                continue
            j = lo + i - self.env_start  # index in self.slope
            s = self._steepest(j)
            if self._blanking(lo + i) and self._preblanked(seg, i, j, s, min(self.blank, dom)):
                continue
            # the lowest envelope since the previous candidate, at most 2 dom back: from the envelope kept, not from
            # `seg`, which starts at this call's first searched sample less dom (with the previous candidate forgotten
            # at each push, the trough re-acquisition reads depended on where pushes began: a639l's candidates' troughs
            # with 0.25 and 10 s pushes, session 52; its extra QRS at 7.8 s was the pulse check's, _marks_hold)
            p = lo + i
            a0 = max(self.prev_cand, p - 2 * self.dom, self.env_start) - self.env_start
            trough = float(self.env[a0:p - self.env_start + 1].min())
            self.prev_cand = p
            edge, rise = self._edge(lo + i)
            yield _Cand(lo + i, math.sqrt(max(float(seg[i]), 0.0)), s, math.sqrt(max(trough, 0.0)), edge=edge,
                        rise=rise)

    def _steepest(self, j: int) -> float:
        """The steepest ``|band-passed difference|`` in the ``slope_s`` up to index ``j`` of ``slope`` (a candidate's
        ``s`` where ``j`` is its envelope peak)."""
        return float(self.slope[max(0, j - self.slope_n):j + 1].max())

    def _own_hump(self, seg: np.ndarray, lo: int, i: int, half: int, reach: int) -> bool:
        """Whether ``seg[i]`` (the envelope from absolute index ``lo``), smaller than some sample within +/- ``half``,
        is a hump of its own that the half-window keeps: the next QRS due there (:meth:`_due`), no larger apex
        within the half-window (:func:`_flank_apexes`: what is larger there is the flank of a hump whose apex lies
        beyond it), ``seg[i]``'s steepest band-passed slope at least ``apex_slope`` of each such hump's, and the two
        not the two edges of one wide complex (the raw signal's net change before each, :meth:`_edge`, of opposite
        signs and each at least ``edge_frac`` of its peak to peak: the detector stays on the edge it was on)."""
        if not self._due(lo + i):
            return False
        apexes = _flank_apexes(seg, i, half, self.half_lo, reach)
        if apexes is None:
            return False
        off = lo - self.env_start  # seg index -> index in self.slope
        s = self._steepest(i + off)
        edge = self._edge(lo + i)[0]
        frac = self.cfg.edge_frac
        for a in apexes:
            if s < self.cfg.apex_slope * self._steepest(a + off):
                return False
            other = self._edge(lo + a)[0]
            if frac > 0 and min(abs(edge), abs(other)) >= frac and edge * other < 0:
                return False
        return True

    def _due(self, p: int) -> bool:
        """Whether the next QRS of a regular rhythm is due at sample ``p``: of the last RR intervals (4 at least) all
        but ``apex_irregular`` within ``apex_regular`` of their median, and ``p`` at least ``t_rr`` of their mean after
        the last QRS."""
        if self.last_qrs is None or len(self.rr) < 4:
            return False
        med = _median(self.rr)
        tol = self.cfg.apex_regular * med
        return (sum(abs(r - med) <= tol for r in self.rr) >= len(self.rr) - self.cfg.apex_irregular
                and p - self.last_qrs >= self.cfg.t_rr * sum(self.rr) / len(self.rr))

    def _edge(self, p: int) -> tuple[float, float]:
        """(share, change): the raw signal's net change over the ``edge_s`` before sample ``p`` and that as a share of
        its peak to peak there (-1 .. 1); nan where those samples are not kept or do not move."""
        if self.cfg.edge_frac <= 0:  # (otherwise the raw samples are kept: keeps_raw)
            return math.nan, math.nan
        a, b = p - self.edge_n - self.raw_start, p + 1 - self.raw_start
        if a < 0 or b > len(self.raw):
            return math.nan, math.nan
        w = self.raw[a:b]
        ptp, rise = float(w.max()) - float(w.min()), float(w[-1]) - float(w[0])
        if ptp <= 0 or float(np.abs(np.diff(w)).max()) > self.cfg.edge_step * abs(rise):
            return math.nan, math.nan  # flat, or a step within a sample or two: no heart's edge (a pulse, a switch)
        return rise / ptp, rise

    def _blanking(self, p: int) -> bool:
        """Whether pre-blanking applies to a candidate at ``p``: ``blank_after_s`` after the last QRS, and the mean RR
        (once 4 intervals are known) at least ``blank_min_rr_s``."""
        if self.last_qrs is not None and p - self.last_qrs < self.blank_after:
            return False
        return len(self.rr) < 4 or sum(self.rr) >= self.cfg.blank_min_rr_s * self.fs * len(self.rr)

    def _preblanked(self, seg: np.ndarray, i: int, j: int, s: float, blank: int) -> bool:
        """A larger and steeper envelope peak follows within ``blank`` samples of ``seg[i]`` (``j``: the same
        sample in ``self.slope``)."""
        after = seg[i + 1:i + blank + 1]
        r2 = self.cfg.blank_ratio ** 2
        if not len(after) or r2 * after.max() <= seg[i]:
            return False
        k = i + 1 + int(np.argmax(after))
        j2 = j + (k - i)
        return self.cfg.blank_ratio * self._steepest(j2) > s

    # ------------------------------------------------------------------ decision rules

    def _learn(self, cands: list[_Cand], *, first: bool, floor: float = 0.0) -> bool:
        """Levels from a window's candidates; False (levels kept) when no candidate stands out or the largest is
        under ``floor``."""
        if not first and self.p_guarding:  # no level from P waves (module docstring, "P waves without QRS")
            cands = [c for c in cands if not self._p_like(c.p, c.v)]
        if not cands:
            return False
        v = np.asarray([c.v for c in cands])
        top = float(v.max())
        if top < floor:
            return False
        low = v[v < 0.5 * top]  # the candidates that are not QRS-sized: T and P waves, noise
        med = float(np.median(low)) if len(low) else 0.0
        if not first and top < self.cfg.peak_ratio * float(np.median([c.trough for c in cands])):
            return False
        self.spk, self.npk = top, max(0.5 * med, self.cfg.npk_floor * top)
        return True

    def _decide(self, c: _Cand, out: list[int]) -> None:
        self.p_now = c.p  # the candidate being decided: what is judged P-like lies within learn_s before it
        if self.pace:
            c = self._paced(c)
        if not self.learnt:
            self.recent.append(c)
            while self.recent[0].p < c.p - self.learn_n:
                self.recent.popleft()
            if c.p < self.learn_n:
                return
            window, self.recent = list(self.recent), deque()
            self.learnt = self._learn(window, first=True)
            self.learnt_at = c.p
            for x in window:
                self._classify(x, out)
            return
        self._searchback(c.p, out)
        wait = self.reacquire_start if c.p < self.settle else self.reacquire
        if c.p - max(self.learnt_at, -1 if self.last_qrs is None else self.last_qrs) > wait:
            # no QRS for reacquire_s: learn the levels again from the last learn_s and decide those again
            if self.cfg.p_guard and not self.p_guarding and self._own_p_like() is False:
                # P waves are no QRS until the lead's QRS are back: p_resume of them at the re-acquisition floor's
                # level or above (or a sixth of the kept QRS' median), no P wave refused since the first of them
                self.p_guarding, self.p_since = True, 0
                self.p_level = self._relearn_floor(c.p) or self.cfg.relearn_floor * _median(
                    [v for _, v, _, _ in self.qrs_snips])
            window = [x for x in self.recent if x.p > c.p - self.learn_n] + [c]
            self.learnt_at = c.p
            if self._learn(window, first=False, floor=self._relearn_floor(c.p)):
                self.relearns += 1
                self.sb_run = 0
                self.noise = []
                self.recent = deque()
                for x in window:
                    self._classify(x, out)
                return
        self._classify(c, out)

    def _paced(self, c: _Cand) -> _Cand:
        """``c``, or where pacemaker pulses lie within ``pace_search_s`` before its peak, ``c`` with ``pv``: its RMS
        slope measured again on the raw signal with those pulses blanked (``v`` and ``s`` as they were; module
        docstring, "Pacemaker pulses").  :meth:`_pulse_only` judges it by ``pv``."""
        cfg, m = self.cfg, self.pace_m
        lo = c.p - self.pace_win  # pulses sought in [lo, p]
        if not any(lo <= i <= c.p + m for i in self.steep) and self._marks_hold(lo - 1):
            return c  # no raw difference near it as steep as a pulse's (the common case, decided here)
        a = lo - self.pace_ctx - self.raw_start  # the band-pass of the window starts here (raw index)
        b = c.p + self.half + 1 - self.raw_start  # ... and ends here (the envelope's largest within +/- half)
        if a < 0 or b > len(self.raw):
            return c  # not enough signal kept (a stream's first moments)
        x = self.raw[a:b]
        k0 = lo - self.raw_start - a  # lo's index in x
        d1 = np.diff(x[k0 - 1:c.p - self.raw_start - a + m + 1])  # d1[i]: x[k0 + i] - x[k0 + i - 1]
        ad = np.abs(d1)
        n = len(d1) - m  # flanks at lo .. p
        # a pulse is steeper than the QRS: than this candidate and the median of the last QRS (band-passed slopes)
        ref = max(c.s, self.pace_thr / cfg.pace_slope)  # (inf before a QRS: no steep mark then either)
        if n <= 0 or not self.qrs_a or float(ad[:n].max()) < cfg.pace_slope * ref:
            return c  # nothing steep enough (or no QRS yet to compare with): no pulse (the common case)
        rev = np.zeros(n)
        sg = np.sign(d1)
        for k in range(1, m + 1):
            opp = sg[:n] == -sg[k:k + n]
            rev = np.maximum(rev, np.where(opp, np.minimum(ad[:n], ad[k:k + n]), 0.0))
        if float(rev.max()) < cfg.pace_slope * ref:
            return c
        hits = np.flatnonzero(rev >= cfg.pace_slope * ref)
        # the swing over each one's flanks, against the last QRS' peak to peak
        xx, need = x[k0 - 1:], self.pace_swing
        hits = hits[[float(xx[i:i + m + 2].max()) - float(xx[i:i + m + 2].min()) >= need for i in hits.tolist()]]
        if not len(hits):
            return c
        # steeper than the QRS band sees around it: pace_ratio times the detector's own band-passed slope (the
        # envelope's input, kept from env_start) within pace_local of each flank
        a0 = max(lo - self.pace_local, self.env_start)
        a1 = min(lo + n + self.pace_local, self.env_start + len(self.slope))
        if a1 <= a0:
            return c
        mf = maximum_filter1d(self.slope[a0 - self.env_start:a1 - self.env_start], size=2 * self.pace_local + 1,
                              mode="nearest")
        loc = mf[np.clip(lo + hits - a0, 0, len(mf) - 1)]
        hits = hits[rev[hits] >= cfg.pace_ratio * loc]
        if not len(hits):
            return c
        y = x.copy()
        b0, b1 = self.pace_blank
        end = -1  # the flanks of one pulse (its ringing included) are one blank, from the first of them
        for i in hits.tolist():
            q = k0 + i
            if q <= end:
                continue
            u, end = max(0, q - b0), min(len(y) - 1, q + b1)
            y[u:end + 1] = np.linspace(y[u], y[end], end - u + 1)
            self.pulses += 1
        # the envelope of the blanked window as push() makes a fresh stream's: band-pass from its first sample's
        # steady state, first difference, moving-window integration
        f = CausalFilter(self.bp.design, self.bp.zi_unit)(y)
        d = np.diff(f, prepend=f[0])
        env = MovingAverage(self.ma.n)(d * d)
        j = c.p - self.raw_start - a  # the peak's index in x
        v = math.sqrt(max(float(env[max(0, j - self.half):j + self.half + 1].max()), 0.0))
        return _Cand(c.p, c.v, c.s, c.trough, pv=v, edge=c.edge, rise=c.rise)

    def _marks_hold(self, start: int) -> bool:
        """Whether the steep marks from sample ``start`` on were made with limits no higher than today's
        (``pace_thr``, ``pace_swing``): then a window without a mark has no pulse.  Marks made before the first QRS
        (``pace_thr`` inf) or before the QRS slopes fell do not say so, and the window is checked in full: with them
        trusted, whether a candidate was checked depended on how the signal was cut into pushes (CinC 2015 a639l, a
        pulse-only candidate at 7.9 s taken for a QRS with pushes of 6 s or more)."""
        for end, thr, swing in reversed(self.marked):
            if end <= start:
                break
            if thr > self.pace_thr or swing > self.pace_swing:
                return False
        return True

    def _relearn_floor(self, p: int) -> float:
        """The lowest signal level a re-acquisition at ``p`` may learn: ``relearn_floor`` of the median level of the
        last QRS, after the stream's first ``settle_s`` and until ``relearn_floor_s`` after the last QRS; else 0.  Nor
        while at least ``relearn_floor_noisy`` of those QRS lay in stretches rated noisy (:attr:`artefact`): a level
        set by artefact taken for QRS says nothing of the heart's; the level is the median of those found after the
        stream's first ``settle_s``, at least ``relearn_floor_beats`` of them (else 0)."""
        cfg = self.cfg
        if self.last_qrs is None or not self.qrs_v or p - self.last_qrs >= cfg.relearn_floor_s * self.fs:
            return 0.0
        self.settle_verdicts()
        if self._mostly_noisy([q for q, _ in self.qrs_v]):
            return 0.0
        late = [v for q, v in self.qrs_v if q >= self.settle or cfg.relearn_floor_beats <= 0]
        if len(late) < max(1, cfg.relearn_floor_beats):
            # the levels of a stream's first seconds, which may be all artefact, set no floor; but a rhythm does, for
            # rhythm_floor_s after the last QRS
            if cfg.relearn_floor_rhythm <= 0 or p - self.last_qrs >= cfg.rhythm_floor_s * self.fs:
                return 0.0
            return cfg.relearn_floor * self._early_rhythm()
        level = float(np.median(late))
        if cfg.relearn_floor_rise > 0:
            low = self._lowest_level(p)
            if low * cfg.relearn_floor_rise <= level:  # the last QRS rose that much over the lead's own: artefact
                level = low
        return cfg.relearn_floor * level

    def _early_rhythm(self) -> float:
        """The median level of the last QRS where they are a rhythm (0.0 where not): at least ``relearn_floor_rhythm``
        of them, none rated noisy, each interval within ``rhythm_rr_tol`` of the one before it (a rhythm that slows
        or speeds up, sinus arrhythmia; their median within ``min_rr_s`` .. ``max_rr_s``), their levels within
        ``rhythm_level_ratio`` of each other.  Electrode motion and taps taken for QRS at a stream's start come at
        irregular intervals with changing levels; a heart's rhythm before a standstill does not (SVDB 850's slows
        from 1.16 to 1.97 s over its last 7 intervals, each within 15 % of the one before, its levels within 3 %:
        intervals within 20 % of their median missed its standstill played 8-14 s into a stream, a reviewer,
        session 50)."""
        cfg = self.cfg
        qs = list(self.qrs_v)
        if len(qs) < cfg.relearn_floor_rhythm:
            return 0.0
        if any(self._noisy_at(q) for q, _ in qs):
            return 0.0
        rr = np.diff([q for q, _ in qs]) / self.fs
        med = float(np.median(rr))
        step = rr[1:] / rr[:-1]
        if not cfg.min_rr_s <= med <= cfg.max_rr_s or (np.abs(np.log(step)) > math.log1p(cfg.rhythm_rr_tol)).any():
            return 0.0
        v = np.asarray([x for _, x in qs])
        if v.max() > cfg.rhythm_level_ratio * v.min():
            return 0.0
        return float(np.median(v))

    def _lowest_level(self, p: int) -> float:
        """The lowest median level of the blocks of 8 QRS (newest first; inf: none) found after the stream's first
        ``settle_s`` within ``relearn_floor_s`` before ``p``, a block of which at least ``relearn_floor_noisy`` lay in
        stretches rated noisy left out (a verdict no longer known counts as clean).  Electrode taps (40 ms pulses of
        4 mV every 1.5-4 s on MIT-BIH 205's V1 for 37 s, a newcomer's, session 35) that the signal-quality index rated
        clean were taken for QRS, and the floor, a sixth of their level, stood 4 times above the lead's own QRS: no
        beat on that lead for the 60 s the floor lasts, and a false asystole alarm over a rhythm of 80 bpm.  Where the
        last 8 QRS stand ``relearn_floor_rise`` times above such a block, the block's level is the floor's
        (:meth:`_relearn_floor`)."""
        cfg = self.cfg
        cut = max(self.settle, p - cfg.relearn_floor_s * self.fs)
        hist = [(q, v) for q, v in self.qrs_hist if q >= cut]
        low = math.inf
        for end in range(len(hist), 7, -8):
            block = hist[end - 8:end]
            if not self._mostly_noisy([q for q, _ in block]):
                low = min(low, float(np.median([v for _, v in block])))
        return low

    def _mostly_noisy(self, qs: list[int]) -> bool:
        """Whether at least ``relearn_floor_noisy`` of the QRS at samples ``qs`` lay in stretches rated noisy: the
        verdict kept for each (:meth:`settle_verdicts`), else the rating :attr:`artefact` gives now; none known (not
        rated yet, or a rating no longer kept): clean."""
        return sum(self._noisy_at(q) for q in qs) >= self.cfg.relearn_floor_noisy * len(qs)

    def _noisy_at(self, q: int) -> bool:
        """Whether the QRS at sample ``q`` lay in a stretch rated noisy: the verdict kept for it
        (:meth:`settle_verdicts`), else the rating :attr:`artefact` gives now; none known: clean."""
        if q in self.qrs_noisy:
            return bool(self.qrs_noisy[q])
        noisy = self.artefact
        return noisy is not None and bool(noisy(q))

    def settle_verdicts(self) -> None:
        """Keep the verdict (:attr:`artefact`) of each of the last QRS whose rating is made; one not rated yet counts as
        clean for the floor (a push longer than ``reacquire_s`` can reach a re-acquisition before its QRS are rated).
        The caller calls this after each rating too, so that a verdict outlives the ratings it keeps."""
        noisy = self.artefact
        if noisy is None:
            return
        for q, _ in self.qrs_v:
            if q not in self.qrs_noisy:
                got = noisy(q)
                if got is not None:
                    self.qrs_noisy[q] = got
        if len(self.qrs_noisy) > 2 * len(self.qrs_v):
            keep = {q for q, _ in self.qrs_v}
            self.qrs_noisy = {q: n for q, n in self.qrs_noisy.items() if q in keep}

    def bridge(self, start: int, stop: int) -> None:
        """Samples ``[start, stop)`` (this detector's indices) were lost in transit and filled in by the caller
        (``Monitor._bridge``): a QRS may lie hidden in them, and its T wave after them has no QRS before it for the
        T-wave rule to judge it by.  A candidate within ``t_wave_s`` after such a stretch, where the next QRS was
        due (0.5-1.3 mean RR after the last one, decided before the stretch), less steep than ``t_slope_frac`` of
        the median steepest slope of the last 8 QRS, is that T wave: noise, and never taken by search-back
        (Pan & Tompkins' T-wave rule, judged against the QRS the gap hid).  MIT-BIH 119, 101, 208 and 203, 10 min
        each with 1 packet in 10 lost (`benchmarks/lossy_link.py`): false detections 32 -> 17, true beats found
        2,695 -> 2,688; 1 in 5 lost: 45 -> 21 and 2,181 -> 2,170 (in-sample: chosen on these runs, against the
        last QRS's slope, which lost 13-15 true beats of 208 and 203)."""
        self.bridges = [b for b in self.bridges if b[1] > stop - 10 * self.fs] + [(start, stop)]

    def _hidden_t(self, c: _Cand) -> bool:
        """Whether ``c`` may be the T wave of a QRS a bridged stretch hid (:meth:`bridge`)."""
        if not self.bridges or self.last_qrs is None or len(self.qrs_s) < 4:
            return False
        if c.s >= self.cfg.t_slope_frac * _median(self.qrs_s):
            return False
        last = self.last_qrs
        mean_rr = self._mean_rr()
        due_lo, due_hi = last + 0.5 * mean_rr, last + 1.3 * mean_rr
        return any(last < b0 and b0 < c.p <= b1 + self.t_wave and due_lo < b1 and due_hi > b0
                   for b0, b1 in self.bridges)

    def _classify(self, c: _Cand, out: list[int]) -> None:
        self.recent.append(c)
        while self.recent and self.recent[0].p < c.p - self.learn_n:
            self.recent.popleft()
        last = self.last_qrs
        if last is not None and c.p - last < self._refractory():
            return
        if last is not None and self._other_edge(c, last):
            self.other_edges += 1
            self.edge_gap = (c.p, c.p - last)
            return
        if c.pv is not None and self._pulse_only(c):
            self.pulse_only += 1
            return
        if c.v > self.threshold:
            if (last is not None and self._t_wave(c, last)) or self._hidden_t(c):
                self._pass(c)  # a T wave
                return
            if last is not None and self._implausible(c, last):
                self._pass(c)  # noise between beats
                return
            if self.p_guarding and self._p_wave(c):
                self._pass(c)  # a P wave without its QRS
                return
            self._qrs(c, out)
        else:
            self._pass(c)

    def _pass(self, c: _Cand) -> None:
        """``c`` is no QRS here: noise (:meth:`_noise`), reported in :attr:`passed` where it reaches ``passed_frac``
        of the threshold."""
        if self.cfg.passed_frac > 0 and c.v >= self.cfg.passed_frac * self.threshold:
            self.passed.append(c.p)
        self._noise(c)

    def _other_edge(self, c: _Cand, last: int) -> bool:
        """Whether ``c`` is the other edge of the last QRS, a wide monophasic complex (module docstring, "wide
        complexes"): within ``t_wave_s`` of it, the raw signal moving over the ``edge_s`` before each peak by at least
        ``edge_frac`` of its peak to peak there (the cleaner by ``edge_clean``; a step is no edge: :meth:`_edge`), one
        up and the other down, the second undoing the first within ``edge_undo``, and the signal between the last QRS
        and the start of ``c``'s window not back past halfway across the first edge."""
        frac = self.cfg.edge_frac
        if frac <= 0 or c.p - last >= self.t_wave:
            return False
        edge, rise = self.last_edge
        if not (min(abs(c.edge), abs(edge)) >= frac and max(abs(c.edge), abs(edge)) >= self.cfg.edge_clean
                and c.edge * edge < 0):
            return False
        # ... the second undoing the first (the signal back near where the complex began)
        if abs(c.rise + rise) > self.cfg.edge_undo * max(abs(c.rise), abs(rise)):
            return False
        # ... and the signal staying beyond halfway up (down) the first edge until the second begins: one complex's top,
        # not a return to where it began and a next complex of the other polarity (a bidirectional VT's falling
        # complex after a rising one: a reviewer's, session 43)
        a, b = last - self.raw_start, c.p - self.edge_n - self.raw_start
        if a < 0 or b >= len(self.raw):
            return False
        if b <= a:
            return True
        w = self.raw[a:b + 1]
        mid = float(self.raw[a]) - rise / 2
        return float(w.min()) > mid if rise > 0 else float(w.max()) < mid

    def _pulse_only(self, c: _Cand) -> bool:
        """Whether a candidate with pacemaker pulses before it is the pulses alone (loss of capture): its blanked
        level ``pv`` under ``pace_frac`` of the median blanked level of the last paced QRS, once ``pace_beats`` of them
        are known, the last within ``pace_memory_s``.  Before that (pacing starts, or comes back) the usual rules
        decide on the candidate as it is."""
        cfg = self.cfg
        if self.paced_v and c.p - self.paced_at > cfg.pace_memory_s * self.fs:
            self.paced_v.clear()
        if len(self.paced_v) < cfg.pace_beats or sum(self.qrs_paced) < cfg.pace_share * len(self.qrs_paced):
            return False
        return cast(float, c.pv) < cfg.pace_frac * _median(self.paced_v)

    def _t_wave(self, c: _Cand, last: int, *, window: int | None = None) -> bool:
        """Pan & Tompkins' T-wave rule: within ``t_wave_s`` (or ``window`` samples) of the last QRS and less than
        ``t_slope_frac`` of its steepest slope.  A T wave lies within the QT interval, shorter than the RR: a
        candidate at or after ``t_rr`` of the mean RR (where the next QRS is due, in a tachycardia faster than
        1 / t_wave_s) is no T wave."""
        cfg = self.cfg
        if c.p - last >= (self.t_wave if window is None else window) or c.s >= cfg.t_slope_frac * self.last_slope:
            return False
        return not (len(self.rr) >= 4 and c.p - last >= cfg.t_rr * sum(self.rr) / len(self.rr))

    def _implausible(self, c: _Cand, last: int) -> bool:
        """Under sustained noise, an early candidate that is smaller and less steep than a QRS is noise.

        The expected time of the next QRS moderates the threshold, as Christov's beat-expectation threshold does
        (Christov II, Real time electrocardiogram QRS detection using combined adaptive threshold, BioMed Eng
        OnLine 3:28, 2004): while the noise level is over ``noisy_npk`` of the signal level, a candidate in the
        first ``early_rr`` of the mean RR after a QRS must reach ``early_frac`` of the signal level or of that
        QRS's steepest slope.  In a clean signal (noise level low) the rule is off, so premature beats are kept; in a
        tachycardia (mean RR under ``early_min_rr_s``) too."""
        cfg = self.cfg
        if self.npk <= cfg.noisy_npk * self.spk or not self.rr:
            return False
        mean_rr = sum(self.rr) / len(self.rr)
        if mean_rr < cfg.early_min_rr_s * self.fs:
            return False  # a tachycardia leaves no room between beats to tell noise by its timing
        return (c.p - last < cfg.early_rr * mean_rr and c.v < cfg.early_frac * self.spk
                and c.s < cfg.early_frac * self.last_slope)

    def _p_like(self, p: int, v: float, x: np.ndarray | None = None, at: int = 0) -> bool | None:
        """Whether the complex whose envelope peaks at sample ``p`` (level ``v``) is P-like (module docstring, "P waves
        without QRS"): from ``x`` (samples from absolute index ``at``; default the raw samples kept, for a candidate
        at most ``learn_s`` before the one being decided), which must hold ``p_back`` before it to the end of its
        repolarisation window; None where they do not."""
        cfg, fs = self.cfg, self.fs
        if x is None:
            if self.p_now - p > self.learn_n:  # older than the samples kept for it whatever the chunking
                return None
            x, at = self.raw, self.raw_start
        k = self.p_mean
        a, b = p - self.p_back - at, p + round(cfg.p_t_s[1] * fs) + k - k // 2 - at
        if a < 0 or b > len(x) or self.p_lp is None:
            return None
        i = p - at
        w = x[i - round(0.2 * fs):i + 1]
        amp = float(w.max()) - float(w.min())
        if not 0 < amp <= cfg.p_a_max or v * fs / amp > cfg.p_f_max:
            return False
        # no repolarisation after it: the 40 ms running mean never p_t_max from its chord
        seg = x[i + round(cfg.p_t_s[0] * fs) - k // 2:b]
        m = np.convolve(seg, np.full(k, 1.0 / k), mode="valid")
        if len(m) < 2 or float(np.abs(m - np.linspace(m[0], m[-1], len(m))).max()) > cfg.p_t_max:
            return False
        # rounded: the largest deflection of the 30 Hz low-pass over the 200 ms before p (followed up to 0.1 s after
        # it), from the median of the 0.35-0.2 s before p, at least p_w50_s wide at half its height
        y = sosfiltfilt(self.p_lp, x[a:i + round(0.1 * fs) + 1])
        lo = self.p_back - round(0.2 * fs)
        ext = y[lo:] - float(np.median(y[:lo]))
        e = int(np.argmax(np.abs(ext[:round(0.2 * fs) + 1])))
        sgn, half = (1.0 if ext[e] >= 0 else -1.0), 0.5 * abs(float(ext[e]))
        i0 = i1 = e
        while i0 > 0 and sgn * ext[i0 - 1] >= half:
            i0 -= 1
        while i1 + 1 < len(ext) and sgn * ext[i1 + 1] >= half:
            i1 += 1
        return (i1 - i0 + 1) / fs >= cfg.p_w50_s

    def _own_p_like(self) -> bool | None:
        """Whether the lead's own last ``p_snips`` QRS were P-like (at least ``p_own`` of them: a lead whose QRS are
        small, rounded and without a visible T wave, where the P-wave rules would refuse its beats); None while fewer
        are known."""
        snips = self.qrs_snips
        if len(snips) < self.cfg.p_snips:
            return None
        n = 0
        for j, (p, v, x, like) in enumerate(snips):
            if like is None:
                like = bool(self._p_like(p, v, x, p - self.p_back))
                snips[j] = (p, v, x, like)
            n += like
        return n >= self.cfg.p_own * len(snips)

    def _p_wave(self, c: _Cand) -> bool:
        """Whether ``c`` is refused as a P wave (the caller checks that the guard is on): it is P-like (counted, and
        the resume count starts again)."""
        if self._p_like(c.p, c.v):
            self.p_refused += 1
            self.p_since = 0
            return True
        return False

    def _noise(self, c: _Cand) -> None:
        # a candidate near the threshold may be a missed QRS (search-back may still take it): it raises the
        # noise level as one at suspect_frac of the threshold would (winsorised), so that missed beats do not
        # lift the threshold over the next ones (bigeminy, couplets, a smaller rhythm after a larger one)
        self.npk += 0.125 * (min(c.v, self.cfg.suspect_frac * self.threshold) - self.npk)
        self.noise.append(c)

    def _qrs(self, c: _Cand, out: list[int], *, searched: bool = False) -> None:
        """Take ``c`` as a QRS; ``searched``: found by search-back (the signal level learns from it at twice the usual
        rate, Pan & Tompkins 1985)."""
        rate = 0.25 if searched else 0.125
        self.sb_run = self.sb_run + 1 if searched else 0
        if self.last_qrs is not None:
            rr = c.p - self.last_qrs
            if self.cfg.min_rr_s * self.fs <= rr <= self.cfg.max_rr_s * self.fs:
                self.rr.append(rr)
        self.spk += rate * (c.v - self.spk)
        self.qrs_v.append((c.p, c.v))
        if self.cfg.relearn_floor_rise > 0:
            hist, cut = self.qrs_hist, c.p - self.cfg.relearn_floor_s * self.fs
            while hist and hist[0][0] < cut:
                hist.popleft()
            hist.append((c.p, c.v))
        self.qrs_s.append(c.s)
        if self.pace:
            self.qrs_paced.append(c.pv is not None)
            a = max(0, c.p - self.pace_pp - self.raw_start)
            w = self.raw[a:c.p + 1 - self.raw_start]
            if len(w):
                self.qrs_a.append(float(w.max()) - float(w.min()))
            self.pace_thr = self.cfg.pace_slope * _median(self.qrs_s)
            if self.qrs_a:
                self.pace_swing = self.cfg.pace_amp * _median(self.qrs_a)
        if c.pv is not None:
            self.paced_v.append(c.pv)
            self.paced_at = c.p
        self.last_qrs, self.last_slope, self.last_edge = c.p, c.s, (c.edge, c.rise)
        self.noise = []
        if self.cfg.p_guard:
            a = c.p - self.p_back - self.raw_start
            if a >= 0 and self.p_now - c.p <= self.learn_n:  # kept whatever the chunking (to dom after it: decided)
                self.qrs_snips.append((c.p, c.v, self.raw[a:a + self.p_back + self.dom + 1].copy(), None))
            if self.p_guarding and c.v >= self.p_level:
                self.p_since += 1
                self.p_guarding = self.p_since < self.cfg.p_resume
        out.append(c.p)

    def _qt_window(self) -> int:
        """The T-wave window of search-back (samples): ``t_wave_s``, or longer after a long cycle, where the QT is:
        Bazett's ``searchback_qtc * sqrt(RR)`` over the RR that ended at the last QRS (the QT follows the preceding
        cycle; Bazett HC, Heart 7:353-370, 1920), at most ``searchback_qt_max_s``."""
        if not self.rr:
            return self.t_wave
        qt = self.cfg.searchback_qtc * math.sqrt(self.rr[-1] / self.fs)
        return max(self.t_wave, round(min(qt, self.cfg.searchback_qt_max_s) * self.fs))

    def _mean_rr(self) -> float:
        """The mean of the last RR intervals (samples), ``rr_init_s`` before any."""
        return sum(self.rr) / len(self.rr) if self.rr else self.cfg.rr_init_s * self.fs

    def _regular_rr(self) -> float | None:
        """The shortest regular RR (samples): the shortest of the last RR intervals that at least ``regular_beats`` of
        them share within ``regular_tol`` of it (itself included); None where none is (or the rule is off)."""
        k = self.cfg.regular_beats
        if k <= 0 or len(self.rr) < k:
            return None
        srt, hi = sorted(self.rr), 1 + self.cfg.regular_tol
        j = 0
        for i, r in enumerate(srt):
            j = max(j, i)
            while j + 1 < len(srt) and srt[j + 1] <= r * hi:
                j += 1
            if j - i + 1 >= k:
                return r
        return None

    def _searchback(self, now: int, out: list[int]) -> None:
        """Pan-Tompkins search-back at half the threshold over the candidates since the last QRS, once no QRS came for
        ``searchback_rr`` times the mean RR; or times the shortest regular RR (:meth:`_regular_rr`) for a candidate
        steep enough (module docstring, "missed beats that recur")."""
        cfg = self.cfg
        while self.last_qrs is not None and self.noise:
            gap = now - self.last_qrs
            early = gap <= cfg.searchback_rr * self._mean_rr()
            if early:
                reg = self._regular_rr()
                if reg is None or gap <= cfg.searchback_rr * reg:
                    return
            lim = cfg.searchback_frac * self.threshold
            qt = self._qt_window()
            ok = [x for x in self.noise if x.v > lim and not self._t_wave(x, self.last_qrs, window=qt)
                  and not self._hidden_t(x)]
            if early:  # before the mean RR's limit only a QRS-steep candidate past the T wave; the others wait for it
                steep, after = cfg.early_slope * _median(self.qrs_s), self.last_qrs + self.t_wave
                ok = [x for x in ok if x.s >= steep and x.p >= after]
                if not ok:
                    return
            if ok and self.p_guarding:  # the largest that is no P wave (module docstring, "P waves without QRS")
                ok.sort(key=lambda x: -x.v)
                while ok and self._p_wave(ok[0]):
                    ok.pop(0)
            if not ok:
                self.noise = []
                return
            best = max(ok, key=lambda x: x.v)
            later = [x for x in self.noise if x.p > best.p]
            self._qrs(best, out, searched=True)
            self.noise = later
            if cfg.relearn_sb > 0 and self.sb_run >= cfg.relearn_sb:
                window = [x for x in self.recent if x.p > now - self.learn_n]
                if len(window) >= cfg.relearn_sb_min and self._learn(window, first=False,
                                                                     floor=self._relearn_floor(now)):
                    self.sb_relearns += 1
                self.sb_run = 0
