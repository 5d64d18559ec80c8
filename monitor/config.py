"""Monitor options: frozen dataclasses hold every default; the command line reads them from there."""

from __future__ import annotations

import argparse
import math
import os
import socket
from dataclasses import dataclass, field, replace
from pathlib import Path

from ecgmon.core.broker import BrokerConfig, credentials
from ecgmon.core.limits import FS_RANGE, RECORD_FS_MAX, check_fs, check_record_fs, parse_speed
from ecgmon.core.messages import Priority
from ecgmon.monitor.alarms import PolicyConfig
from ecgmon.monitor.learning import LearningConfig
from ecgmon.monitor.lethal import LethalConfig
from ecgmon.monitor.settings import NatsSettings, PipelineConfig, shard_partitions


def default_journal() -> Path:
    """``$ECGMON_JOURNAL`` or ``$XDG_STATE_HOME/ecgmon/alarms.jsonl`` (``~/.local/state/...``)."""
    if p := os.environ.get("ECGMON_JOURNAL"):
        return Path(p)
    return _state_dir() / "alarms.jsonl"


def default_learn_state() -> Path:
    """``$ECGMON_LEARN_STATE`` or ``$XDG_STATE_HOME/ecgmon/learnt.json``: what each bed has learnt."""
    if p := os.environ.get("ECGMON_LEARN_STATE"):
        return Path(p)
    return _state_dir() / "learnt.json"


def _state_dir() -> Path:
    return Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "ecgmon"


def default_checkpoint(source: str) -> str:
    """The shipped model a source gets without ``--checkpoint``: the source kind decides.  ``replay`` plays
    ECG5000's beats, so it gets the ECG5000 model; every other source carries real ECG (bedside devices over MQTT
    or NATS, recordings), so it gets the real-ECG model (``mitdb``, fitted on MIT-BIH records), whose beats, RR
    intervals and amplitudes are those of real ECG.  The simulator's ECG5000 devices (``ecgmon simulate --kind
    ecg5000``, ``ecgmon demo``) publish ECG5000 beats: their monitor is told ``--checkpoint ecg5000`` (the demo
    does so itself)."""
    return "ecg5000" if source == "replay" else "mitdb"


@dataclass(frozen=True, slots=True)
class MonitorConfig:
    """Times in seconds; rates in Hz.  ``speed`` None: as fast as the monitor takes it."""

    source: str = "replay"
    records: tuple[Path, ...] = ()  # --source record: WFDB records, folders, RECORDS lists or CSV files
    lead: str | None = None  # the lead played from each record; None: II (MLII, ...) or, lacking it, the first
    # --source record: a record's second ECG lead too, for the lethal alarms (None: where a WFDB or EDF one has one)
    second_lead: bool | None = None
    units: str | None = None  # --source record: the unit of records that do not state theirs (mV, uV, V)
    start: float = 0.0  # --source record: seconds skipped at the start of each record
    csv_fs: float | None = None  # --source record: the rate of records that do not state theirs (else: must agree)
    patients: int = 8  # replay beds
    abnormal_rate: float | None = 0.03  # replay: a ward's share of abnormal beats; None: the whole test split
    fs: float = 250.0  # replay sampling rate; a CSV record's rate (given explicitly)
    speed: float | None = 1.0
    seed: int = 0
    chunk_s: float = 0.25
    loop: bool = False
    checkpoint: Path | str | None = None  # None: by source (see --checkpoint)
    device: str = "auto"
    threads: int | None = None  # torch CPU threads; None: all cores but one, left to the event loop
    workers: int = 1  # --source mqtt: processes judging the devices (monitor/workers.py); 1: this process alone
    duration: float | None = None
    ui: bool = True
    # the console rings the terminal's bell when an audible alarm (HIGH or MEDIUM) is raised, and every HIGH_BELL_S
    # while a HIGH one is unacknowledged (--no-bell: silent)
    bell: bool = True
    journal: Path = field(default_factory=default_journal)
    strips: bool = True  # keep each physiological alarm's ECG beside the journal (X.strips.jsonl)
    learning: LearningConfig = LearningConfig()  # used only with a checkpoint calibrated for per-bed learning
    learn_state: Path | None = field(default_factory=default_learn_state)  # None: nothing kept across runs
    pipeline: PipelineConfig = PipelineConfig()
    policy: PolicyConfig = PolicyConfig()
    lethal: LethalConfig = LethalConfig()
    broker: BrokerConfig | None = None  # --source mqtt
    nats: NatsSettings | None = None  # --source nats (distributed workers, docs/workers.md)


_M, _P, _A, _B, _L = MonitorConfig(), PipelineConfig(), PolicyConfig(), BrokerConfig(), LearningConfig()
_X = LethalConfig()


def add_monitor_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("source")
    g.add_argument("--source", choices=("replay", "mqtt", "record", "nats"), default=_M.source,
                   help="replay: ECG5000 test-split beats rendered as live patients (default); "
                        "mqtt: live devices publishing to a broker; record: recorded patients (WFDB, EDF or CSV); "
                        "nats: a worker of several, on NATS JetStream partitions with failover (docs/workers.md)")
    g.add_argument("records", nargs="*", type=Path, metavar="PATH",
                   help="--source record: WFDB records (without extension), folders, RECORDS lists, CSV files")
    g.add_argument("--lead", default=_M.lead,
                   help="--source record: lead to play, by name (case-insensitive; MLII = II = ECG II, ECG1 = ECG 1) "
                        "or '#k', the k-th signal of the file (for leads that share a name); "
                        "a record without it is left out. Default: II or an alias, else the record's first (warned)")
    g.add_argument("--second-lead", action=argparse.BooleanOptionalAction, default=_M.second_lead,
                   help="--source record: each record's second ECG lead is played beside the first; the lethal "
                        "alarms are decided on both leads, the first is scored and shown (docs/alarms.md, 'A second "
                        "lead'). Default: where a WFDB record or an EDF file has a second ECG lead; --second-lead "
                        "says when one has none, --no-second-lead plays one lead")
    g.add_argument("--units", default=_M.units,
                   help="--source record: unit of the samples (mV, uV, V) where a file does not say it; where it "
                        "does, they must agree")
    g.add_argument("--start", type=float, default=_M.start, help="--source record: seconds skipped at the start")
    g.add_argument("--patients", type=int, default=_M.patients, help=f"beds to replay (default {_M.patients})")
    g.add_argument("--fs", type=float, default=None,
                   help=f"replay sampling rate (default {_M.fs:g}), or --source record: the rate of records that do "
                        "not state theirs (CSV); where a file states it, they must agree; "
                        f"{FS_RANGE[0]:g}-{FS_RANGE[1]:g} Hz (a record: up to {RECORD_FS_MAX:g} Hz, decimated to "
                        f"{FS_RANGE[1]:g} Hz or less as it is read)")
    g.add_argument("--speed", default=str(_M.speed), help="1 = real time, 10 = ten times faster, max = as fast as "
                                                          f"possible (default {_M.speed:g})")
    g.add_argument("--abnormal-rate", default=str(_M.abnormal_rate),
                   help=f"replay: share of abnormal beats, as on a ward (default {_M.abnormal_rate:g}: most beds "
                        "quiet, ectopy in episodes); 'all' plays the whole test split (42%% abnormal) as the "
                        "figures do")
    g.add_argument("--seed", type=int, default=_M.seed, help="replay seed (rhythm, heart rates, beat order)")
    g.add_argument("--chunk", type=float, default=_M.chunk_s, dest="chunk_s", help="chunk duration in seconds")
    g.add_argument("--loop", action="store_true", help="replay the split again when it ends")
    add_broker_arguments(p)
    add_nats_arguments(p)
    g = p.add_argument_group("model")
    g.add_argument("--checkpoint", default=None,
                   help="a checkpoint file, or a shipped one by name: ecg5000 (default for --source replay, and "
                        "for the simulator's ECG5000 devices), mitdb (the real-ECG model; default for real devices "
                        "over MQTT or NATS and for --source record), ucr")
    g.add_argument("--learn", type=float, default=_L.learn_s, dest="learn_s",
                   help=f"seconds each bed learns its own normal before its verdicts count (default "
                        f"{_L.learn_s:g}; 0 = population threshold; models without per-bed learning ignore it)")
    g.add_argument("--learn-state", type=Path, default=None,
                   help=f"file keeping what each bed learnt across restarts (default {default_learn_state()}); "
                        "'none': keep nothing (a recording played again learns again)")
    g.add_argument("--device", default=_M.device, help="auto | cpu | cuda")
    g.add_argument("--max-batch", type=int, default=_P.max_batch, help="largest scoring micro-batch (beats)")
    g.add_argument("--max-wait-ms", type=float, default=_P.max_wait_ms, help="longest wait to fill a micro-batch")
    g.add_argument("--bridge-s", type=float, default=_P.bridge_s,
                   help=f"packets lost in transit leaving a gap this long or shorter are bridged: the bed's QRS "
                        f"detector goes on, beats next to the gap get no verdict; a longer gap restarts it and "
                        f"raises signal loss (default {_P.bridge_s:g} s; 0: every gap restarts)")
    g.add_argument("--threads", type=int, default=None,
                   help="CPU threads for torch (default: all cores but one, left to the event loop)")
    g = p.add_argument_group("run")
    g.add_argument("--workers", type=int, default=_M.workers,
                   help="--source mqtt: N worker processes on this machine, each judging its own devices (a device "
                        "hashes to one worker), one console; a worker that dies is restarted and its beds alarmed "
                        "'bed unmonitored' meanwhile (docs/mqtt.md). Default 1: this process alone")
    g.add_argument("--no-ui", action="store_true", help="headless: JSON lines on stdout instead of the console")
    g.add_argument("--no-bell", action="store_true",
                   help="the console stays silent (by default it rings the terminal's bell when a HIGH or MEDIUM alarm "
                        "is raised, and every 10 s while a HIGH one is unacknowledged)")
    g.add_argument("--duration", type=float, default=None,
                   help="stop after this many seconds (--source record: play this many seconds of each record)")
    g.add_argument("--max-beats", type=int, default=None, help="stop after exactly this many verdicts")
    g.add_argument("--journal", type=Path, default=None,
                   help=f"alarm journal (JSONL); default {default_journal()}")
    add_alarm_arguments(p)


def add_alarm_arguments(p: argparse.ArgumentParser) -> None:
    """The alarm options (abnormal-beat advisories, lethal and rate alarms): the monitor's, and ``ecgmon evaluate``'s
    so that the settings a unit would deploy can be measured on records before they are."""
    g = p.add_argument_group("abnormal-beat advisories (docs/alarms.md; a count of 0 turns one off)")
    g.add_argument("--veb-per-min", type=int, default=_A.veb_per_min,
                   help=f"frequent ventricular ectopy: this many ventricular beats in a minute (default "
                        f"{_A.veb_per_min}; clears at {_A.veb_clear_per_min} or fewer)")
    g.add_argument("--vrun-len", type=int, default=_A.vrun_len,
                   help="ventricular run: this many consecutive ventricular beats (non-sustained; VT is --vt-bpm's)")
    g.add_argument("--vrun-similar", type=float, default=_A.vrun_similar,
                   help=f"ventricular run: its complexes alike, median correlation of each with the one before at "
                        f"least this (default {_A.vrun_similar:g}; 0: off)")
    g.add_argument("--vrun-bpm", type=float, default=_A.vrun_bpm,
                   help=f"ventricular run: MEDIUM over this rate (bpm; non-sustained VT), a slower run at "
                        f"{_A.slow_vrun_priority.name} ('--priority slowvrun=...'; default {_A.vrun_bpm:g}; "
                        f"0: every run MEDIUM)")
    g.add_argument("--svt-run-len", type=int, default=_A.svt_run_len,
                   help="supraventricular run: this many consecutive supraventricular premature beats")
    g.add_argument("--pattern-cycles", type=int, default=_A.pattern_cycles,
                   help="ventricular bigeminy / trigeminy: this many cycles of N-V / N-N-V")
    g.add_argument("--no-couplet", action="store_true", help="no advisory for two consecutive ventricular beats")
    g.add_argument("--run-len", type=int, default=_A.run_len,
                   help="abnormal run: this many consecutive abnormal beats of mixed or unclassified types")
    g.add_argument("--other-per-min", type=int, default=_A.other_per_min,
                   help="frequent abnormal beats: this many unclassified abnormal beats in a minute")
    g.add_argument("--clear-after", type=int, default=_A.clear_normal,
                   help="beats that do not continue a run or pattern before its advisory clears")
    g.add_argument("--beat-alarm", action="store_true",
                   help="a LOW 'abnormal beat' alarm for every flagged beat (off: such beats are counted and shown)")
    g.add_argument("--sv-prem", type=float, default=_A.sv_prem,
                   help="supraventricular premature: RR before the beat under this share of the bed's median RR")
    g.add_argument("--sv-unflagged", action="store_true",
                   help="type premature narrow beats supraventricular premature even when the autoencoder does not "
                        "flag them (more SVEB found, more supraventricular-run advisories)")
    g.add_argument("--v-alone-p", type=float, default=_A.v_alone_p,
                   help="a beat the ventricular typer calls ventricular with this probability is ventricular even "
                        "when the autoencoder does not flag it")
    g.add_argument("--vrun-reannounce", action="store_true",
                   help="announce every new ventricular run again, even while the run advisory of its episode is on "
                        "(by default runs that recur within a minute are one alarm)")
    g.add_argument("--veb-episode-s", type=float, default=_A.veb_episode_s,
                   help=f"frequent ventricular ectopy clears once the count has stayed at or under its clearing rate "
                        f"this long (s; default {_A.veb_episode_s:g}): ectopy that comes and goes is one episode")
    g.add_argument("--chain-s", type=float, default=_A.chain_s,
                   help=f"alarm chains: a lower alarm (heart rate high < extreme tachycardia; pause, heart rate low < "
                        f"extreme bradycardia, asystole; ventricular run < VT, VF; frequent ventricular ectopy < all "
                        f"three) is not raised while a higher one is on nor for this long after it cleared (s; "
                        f"default {_A.chain_s:g}; 0: no chaining)")
    g.add_argument("--chain-ahead-s", type=float, default=_A.chain_ahead_s,
                   help=f"an advisory is not raised either when a higher alarm of its chain was raised within this "
                        f"long after the advisory's beat (the episode escalated at once: no MEDIUM 'ventricular run' "
                        f"after the VT alarm it led to; s; default {_A.chain_ahead_s:g}; 0: off)")
    g.add_argument("--priority", action="append", default=[], metavar="ADVISORY=PRIORITY",
                   help="an advisory's priority (low or medium; HIGH is for the lethal alarms): veb, vrun, svt, "
                        "pattern (couplet, bigeminy, trigeminy), run, frequent; e.g. --priority vrun=low")
    g = p.add_argument_group("lethal and rate alarms (docs/alarms.md; from the first seconds, never held by learning)")
    g.add_argument("--asystole-s", type=float, default=_X.asystole_s,
                   help=f"HIGH asystole: no QRS for this long (s; default {_X.asystole_s:g})")
    g.add_argument("--brady-bpm", type=float, default=_X.brady_bpm,
                   help=f"HIGH extreme bradycardia: under this rate for {_X.brady_beats} beats (bpm; default "
                        f"{_X.brady_bpm:g})")
    g.add_argument("--tachy-bpm", type=float, default=_X.tachy_bpm,
                   help=f"HIGH extreme tachycardia: over this rate for {_X.tachy_beats} beats (bpm; default "
                        f"{_X.tachy_bpm:g})")
    g.add_argument("--brady-beats", type=int, default=_X.brady_beats,
                   help=f"extreme bradycardia: the rate over this many consecutive beats (default {_X.brady_beats})")
    g.add_argument("--tachy-beats", type=int, default=_X.tachy_beats,
                   help=f"extreme tachycardia: the rate over this many consecutive beats (default {_X.tachy_beats})")
    g.add_argument("--vt-bpm", type=float, default=_X.vt_bpm,
                   help=f"HIGH ventricular tachycardia: {_X.vt_beats} or more ventricular beats over this rate (bpm; "
                        f"default {_X.vt_bpm:g})")
    g.add_argument("--hr-low", type=float, default=_X.hr_low,
                   help=f"MEDIUM heart rate low limit (bpm; default {_X.hr_low:g}), every bed (per bed: MQTT control "
                        "'limits')")
    g.add_argument("--hr-high", type=float, default=_X.hr_high,
                   help=f"MEDIUM heart rate high limit (bpm; default {_X.hr_high:g})")
    g.add_argument("--pause-s", type=float, default=_X.pause_s,
                   help=f"MEDIUM pause: no QRS for this long (s; default {_X.pause_s:g})")
    g.add_argument("--pause-wait-s", type=float, default=_X.pause_wait_s,
                   help=f"a pause is decided this long after it was due (s; default {_X.pause_wait_s:g}): the QRS "
                        "detector reports the QRS it finds on learning its levels again after 3 s without one that "
                        "late; its alarm keeps the sample where it was due")
    g.add_argument("--vt-clear-share", type=float, default=_X.vt_clear_share,
                   help=f"VT clears once under this share of the last {_X.vt_clear_beats} typed beats is ventricular "
                        f"({1 / _X.vt_clear_beats:g}, the default: {_X.vt_clear_beats} in a row not ventricular)")
    g.add_argument("--vt-p", type=float, default=_X.vt_p,
                   help=f"VT: a beat counts as ventricular at this P(ventricular) of the beat typer (default "
                        f"{_X.vt_p})")
    g.add_argument("--vt-misread", type=int, default=_X.vt_misread,
                   help=f"VT: beats not typed ventricular a run may hold between its first and last ventricular beat "
                        f"(default {_X.vt_misread}; 0: strictly in a row)")
    g.add_argument("--vt-misread-rr", type=float, default=_X.vt_misread_rr,
                   help=f"VT with a misread beat: each interval of the run within this share of their median (default "
                        f"{_X.vt_misread_rr:g}: none over twice the median)")
    g.add_argument("--vt-similar", type=float, default=_X.vt_similar,
                   help=f"VT: the run's complexes alike: median correlation of each with the one before at least "
                        f"this (default {_X.vt_similar:g}; 0 still refuses a run whose complexes anti-correlate)")
    g.add_argument("--vt-wide-ms", type=float, default=1000 * (_X.vt_wide_s or 0),
                   help=f"VT: a complex whose QRS slope energy spreads over this many ms or more counts as ventricular "
                        f"whatever the bed's template (a VT present from the bed's first beats; default "
                        f"{1000 * (_X.vt_wide_s or 0):g}; 0: off), in a regular run of alike complexes")
    g.add_argument("--vt-wide-regular", type=float, default=_X.vt_wide_regular,
                   help=f"VT of very wide complexes: each interval of the run within this share of their median "
                        f"(default {_X.vt_wide_regular:g})")
    g.add_argument("--vt-wide-similar", type=float, default=_X.vt_wide_similar,
                   help=f"VT of very wide complexes: each QRS correlating this or more with the one before (default "
                        f"{_X.vt_wide_similar:g})")
    g.add_argument("--vt-regular", type=float, default=_X.vt_regular,
                   help=f"VT: each interval of the run within this share of their median (default {_X.vt_regular:g}; "
                        f"0: off)")
    g.add_argument("--no-vt-sustain", action="store_true",
                   help="VT: clear once 8 beats in a row are not typed ventricular, even while the run's complexes go "
                        "on alike and fast (by default a sustained run holds its alarm: the typer's template becomes "
                        "the VT complex after about 24 of its beats)")
    g.add_argument("--vt-sustain-corr", type=float, default=_X.vt_sustain_corr or 0.0,
                   help=f"VT sustained: after an abrupt change of complex (--vt-sustain-jump), a beat holds the run "
                        f"only while its QRS correlates this or more (either sign) with the bed's template, by "
                        f"then the VT's complex (default {_X.vt_sustain_corr or 0:g}: a VT converting to a sinus "
                        f"tachycardia over the VT rate clears; 0: off, held till the rate falls)")
    g.add_argument("--vt-sustain-jump", type=float, default=_X.vt_sustain_jump,
                   help=f"VT sustained: --vt-sustain-corr applies once a beat correlated under this with the one "
                        f"before (an abrupt change of complex; default {_X.vt_sustain_jump:g}), until one like the "
                        f"template comes back")
    g.add_argument("--vt-turn", type=float, default=_X.vt_turn or 0.0,
                   help=f"VT sustained: the chain of alike beats that holds a VT alarm is armed once the typer's "
                        f"template turns to the run's complex: a beat like the template by this much more than the "
                        f"run's last ventricular beat, and alike that beat (default {_X.vt_turn or 0:g}; 0: off, armed "
                        f"only after 20 beats typed ventricular since the alarm)")
    g.add_argument("--vt-odd-beats", type=int, default=_X.vt_odd_beats,
                   help=f"VT sustained: up to this many complexes in a row unlike the one before (a capture beat, "
                        f"beats in a burst of noise) neither go on with the chain that holds a VT alarm nor end it: "
                        f"the next beat goes on when alike the run's beat before them (default {_X.vt_odd_beats}; 0: "
                        f"off, one ends the chain)")
    g.add_argument("--no-vt-wide-hold", action="store_true",
                   help="VT: a very wide complex at over the VT rate does not hold the VT alarm (by default, while VT "
                        "is on, it counts as ventricular towards clearing it: a VT that is the bed's template is typed "
                        "as the bed's own)")
    g.add_argument("--vt-held-unanalysable", action="store_true",
                   help="VT: raise none while 'ECG cannot be analysed' is on (off by default: on CinC 2015 development "
                        "records it lost 3 of 23 true VT alarms for 4 of 11 false ones)")
    g.add_argument("--tachy-held-unanalysable", action="store_true",
                   help="extreme tachycardia: raise none while the lead's 'ECG cannot be analysed' is on (off by "
                        "default: a true tachycardia amid recurring noise bursts was not raised for minutes)")
    g.add_argument("--vf-organised-bpm", type=float, default=_X.organised_bpm,
                   help=f"VF/flutter: a window over a regular rhythm of clean QRS no faster than this is not VF (a "
                        f"regular wide-complex rhythm; default {_X.organised_bpm:g}; 0: off)")
    g.add_argument("--vf-episode-s", type=float, default=_X.vf_episode_s,
                   help=f"VF/flutter: once on, the alarm clears after 3 s without VF over an organised rhythm, else "
                        f"only after this long without VF (one episode, one alarm; default {_X.vf_episode_s:g} s, "
                        f"at least 3)")
    g.add_argument("--second-lead-vt", choices=("first", "confirmed", "either", "both"), default=_X.second_lead_vt,
                   help="a bed with a second lead (--second-lead): VT read on the first lead, and on the second "
                        "when the first lead shows 4 ventricular beats in a row within its run (confirmed, the "
                        "default); on the first lead alone; on either lead; or on the first confirmed by the second "
                        "where it can be read")
    g.add_argument("--second-lead-veto", action=argparse.BooleanOptionalAction, default=_X.second_lead_veto,
                   help="a bed with a second lead: the first lead's VT run is not raised where the second lead, "
                        "readable, goes on over it with fewer beats, its own complexes (none typed ventricular or in "
                        "artifact, each like its template and of its size) at its own rhythm (each interval within "
                        "20 %% of its median before): noise or motion on the first lead (default on; docs/alarms.md, "
                        "'A second lead's veto of the first lead's VT')")
    g.add_argument("--vt-clear-bpm", type=float, default=_X.vt_clear_bpm,
                   help="VT also clears once the rate over its clearing beats is at or under this (bpm; 0, the "
                        "default: off)")
    g.add_argument("--vt-episode-s", type=float, default=_X.vt_episode_s,
                   help=f"VT also clears once no VT run has come for this long over beats read clean (s; default "
                        f"{_X.vt_episode_s:g}; 0: off): a slow ventricular bigeminy after the run is not VT")
    g.add_argument("--vt-noisy", action="store_true",
                   help="VT: a QRS the signal-quality index calls noisy counts as in artifact (not ventricular)")
    g.add_argument("--vt-artifact-clears", action="store_true",
                   help="a beat in artifact counts as not ventricular when clearing VT (by default it holds VT)")
    g.add_argument("--vt-artifact-slow-holds", action="store_true",
                   help="a beat in artifact holds VT even in a slow regular rhythm (by default, where each of the "
                        "last typed intervals is at or under --vt-bpm and regular, it counts as not ventricular)")
    g.add_argument("--rate-gap-s", type=float, default=_X.rate_gap_s,
                   help="an RR interval this long or more is no heart rate for the extreme-rate alarms (default: "
                        "--asystole-s; asystole's own alarm covers it)")
    g.add_argument("--rates-in-noise", action="store_true",
                   help="RR intervals ending in a stretch the signal-quality index calls noisy count for extreme "
                        "tachycardia and the high rate limit (by default they do not, and 'ECG cannot be analysed' "
                        "is raised after --asystole-s of such detections)")
    g.add_argument("--cannot-analyse-s", type=float, default=_X.cannot_analyse_s,
                   help="the technical 'ECG cannot be analysed' clears after 3 clean QRS once the signal has been "
                        f"readable this long (s; default {_X.cannot_analyse_s:g}; 0: at the third clean QRS): noise "
                        "that comes and goes is one alarm")
    g.add_argument("--rate-episode-s", type=float, default=_X.rate_episode_s,
                   help="an extreme brady- or tachycardia alarm clears only once its condition has been absent this "
                        f"long (s; default {_X.rate_episode_s:g}): a rate that recurs within it is one alarm; or at "
                        f"once when the rate is --rate-resolved-bpm inside the limit")
    g.add_argument("--rate-resolved-bpm", type=float, default=_X.rate_resolved_bpm,
                   help=f"with --rate-episode-s: an extreme-rate episode is over at once when the rate is this far "
                        f"inside its limit (bpm; default {_X.rate_resolved_bpm:g})")
    g.add_argument("--rate-resolved-s", type=float, default=_X.rate_resolved_s,
                   help=f"... and only once the condition has been absent this long (s; default "
                        f"{_X.rate_resolved_s:g}; 0: at once): a rate back inside for a moment is no end of its "
                        "episode")
    g.add_argument("--tachy-resolved-beats", type=int, default=_X.tachy_resolved_beats,
                   help="an extreme tachycardia is plainly back (--rate-resolved-bpm inside its limit) only when the "
                        f"rate over this many beats is too (default {_X.tachy_resolved_beats}; 0: over --tachy-beats "
                        "alone): atrial fibrillation hovering near the limit is one alarm")
    g.add_argument("--no-pause-artifact", action="store_true",
                   help="the VF detector's artifact windows do not hold the pause timer (by default they hold it as "
                        "they hold asystole's)")
    g.add_argument("--no-asystole-artifact", action="store_true",
                   help="the VF detector's artifact windows do not hold the asystole timer (by default they do, as "
                        "leads off does)")


def add_broker_arguments(p: argparse.ArgumentParser, *, monitor: bool = True,
                         client_id_help: str | None = None, qos_choices: tuple[int, ...] = (0, 1, 2)) -> None:
    g = p.add_argument_group("MQTT (credentials: ECGMON_MQTT_USERNAME and ECGMON_MQTT_PASSWORD, or --password-file)")
    g.add_argument("--broker", default=_B.url, help="mqtt://host:port or mqtts://host:port (TLS)")
    g.add_argument("--client-id", default=None,
                   help=client_id_help or "MQTT client id (default ecgmon-HOSTNAME; the simulator connects as "
                                          "CLIENT_ID-sim)")
    g.add_argument("--qos", type=int, choices=qos_choices, default=_B.qos if _B.qos in qos_choices else qos_choices[0])
    g.add_argument("--ca", type=Path, default=None, help="CA certificate to verify an mqtts:// broker")
    g.add_argument("--cert", type=Path, default=None, help="client certificate (mutual TLS)")
    g.add_argument("--key", type=Path, default=None, help="client private key (mutual TLS)")
    g.add_argument("--username", default=None, help="MQTT user name (default $ECGMON_MQTT_USERNAME)")
    g.add_argument("--password-file", type=Path, default=None, help="file holding the MQTT password")
    if monitor:
        g.add_argument("--topic", default=_B.topic, help="sample topic filter; + is the device id")
        g.add_argument("--labels-topic", default=_B.labels_topic,
                       help="ground-truth labels side topic ('' to ignore)")
        g.add_argument("--control-topic", default=_B.control_topic,
                       help="clinicians' commands to a bed, {\"cmd\": \"relearn\"} ('' to ignore); who may write "
                            "it is the broker ACL's business (SECURITY.md)")
        g.add_argument("--no-persistent", action="store_true", help="clean session instead of a persistent one")
        g.add_argument("--reorder", type=int, default=_B.reorder, help="chunks held per device to repair reordering")
        g.add_argument("--max-device-speed", type=float, default=_B.max_device_speed, metavar="X",
                       help="while the monitor is behind, refuse the devices that send more than X s of signal a "
                            "second (after a 30 s burst), so that the beds sending in real time keep being monitored "
                            f"(default {_B.max_device_speed:g}; 0: never; docs/mqtt.md)")
        g.add_argument("--max-devices", type=int, default=_B.max_devices, metavar="N",
                       help="devices (beds) this monitor takes at most; packets of a new device past N are refused "
                            "(too-many-devices, named in the monitor's bad-input alarm): a device whose id changes "
                            "at every boot left a bed behind per id, ~220 KB each, for good "
                            f"(default {_B.max_devices}; 0: no limit; docs/mqtt.md)")
        g.add_argument("--shard", default=None,
                       help="I/N: this worker handles only the devices that hash to shard I of N (run N workers "
                            "with I = 0..N-1; each still receives every device's messages, so on one machine "
                            "--workers N is better; docs/mqtt.md)")


_N = NatsSettings()


def add_nats_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("NATS workers (--source nats; --shard I/N: worker I of N prefers partitions p % N == I)")
    g.add_argument("--nats", default=_N.url, help="nats://host:port of the NATS server (several: comma-separated)")
    g.add_argument("--partitions", type=int, default=_N.partitions,
                   help=f"partitions of the devices (default {_N.partitions}; the same as the server's mapping)")
    g.add_argument("--worker", default=None, help="this worker's name (default HOSTNAME-PID; no '.')")
    g.add_argument("--prefer", default=None,
                   help="partitions this worker takes at once, e.g. 0,1,2 ('none': standby only; default all, "
                        "or those of --shard)")
    g.add_argument("--no-standby", action="store_true",
                   help="never take over other partitions (default: stand by for all of them)")
    g.add_argument("--replicas", type=int, default=_N.replicas,
                   help="replicas of the stream and the state bucket (3 on a 3-node cluster)")
    g.add_argument("--station", action="store_true",
                   help="a central station's view: also show and journal every bed the other workers judge, with "
                        "their alarms (with --prefer none --no-standby: a console that judges no bed itself)")


def nats_from_args(a: argparse.Namespace) -> NatsSettings:
    prefer: tuple[int, ...] | None = None
    if a.prefer is not None:
        text = a.prefer.strip().lower()
        try:
            prefer = () if text == "none" else tuple(int(v) for v in text.split(",") if v.strip())
        except ValueError as err:
            raise ValueError(f"--prefer must look like 0,1,2 or 'none', got {a.prefer!r}") from err
    elif (shard := parse_shard(a.shard)) is not None:
        prefer = shard_partitions(shard[0], shard[1], a.partitions)
    cfg = replace(_N, url=a.nats, partitions=a.partitions, prefer=prefer, standby=not a.no_standby,
                  replicas=a.replicas, reorder=a.reorder, labels=bool(a.labels_topic),
                  control=bool(a.control_topic), station=a.station)
    return replace(cfg, worker=a.worker) if a.worker else cfg


def parse_shard(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError as err:
        raise ValueError(f"--shard must look like I/N (e.g. 0/2), got {text!r}") from err
    if not 0 <= i < n:
        raise ValueError(f"--shard {text}: need 0 <= I < N")
    return i, n


def broker_from_args(a: argparse.Namespace, *, monitor: bool = False) -> BrokerConfig:
    """The broker settings of the command line; ``monitor``: with the monitor's topic options too."""
    user, pw = credentials(password_file=a.password_file, username=a.username)
    cfg = BrokerConfig(url=a.broker, qos=a.qos, ca=a.ca, cert=a.cert, key=a.key, username=user, password=pw)
    if a.client_id is not None:
        cfg = replace(cfg, client_id=a.client_id)
    if monitor:
        shard = parse_shard(a.shard)
        cfg = replace(cfg, topic=a.topic, labels_topic=a.labels_topic or None,
                      control_topic=a.control_topic or None, persistent=not a.no_persistent,
                      reorder=a.reorder, shard=shard, max_device_speed=a.max_device_speed,
                      max_devices=a.max_devices)
        if shard and a.client_id is None:  # workers on one host need distinct client ids (persistent sessions)
            cfg = replace(cfg, client_id=f"ecgmon-{socket.gethostname()}-shard{shard[0]}of{shard[1]}")
    cfg.host_port  # noqa: B018 - validates the URL early, with a message the user can act on
    return cfg


def parse_rate(text: str) -> float | None:
    """``--abnormal-rate``: a share in [0, 1), or ``all`` (None: the whole split)."""
    if text.strip().lower() in ("all", "none", "split"):
        return None
    try:
        v = float(text)
    except ValueError as err:
        raise ValueError(f"--abnormal-rate must be a share like 0.03 or 'all', got {text!r}") from err
    if not 0 <= v < 1:
        raise ValueError(f"--abnormal-rate {text}: need 0 <= rate < 1 (or 'all')")
    return v


_PRIORITY_KEYS = {"veb": "frequent_veb_priority", "vrun": "vrun_priority", "slowvrun": "slow_vrun_priority",
                  "svt": "svt_priority",
                  "pattern": "pattern_priority", "run": "run_priority", "frequent": "frequent_priority"}


def policy_from_args(a: argparse.Namespace) -> PolicyConfig:
    """The abnormal-beat advisories of the command line, checked (PolicyConfig checks the counts)."""
    prio: dict[str, Priority] = {}
    for item in a.priority:
        key, _, value = item.partition("=")
        if key.strip().lower() not in _PRIORITY_KEYS or value.strip().lower() not in ("low", "medium"):
            raise ValueError(f"--priority must look like ADVISORY=low|medium with ADVISORY one of "
                             f"{', '.join(_PRIORITY_KEYS)}, got {item!r}")
        prio[_PRIORITY_KEYS[key.strip().lower()]] = Priority[value.strip().upper()]
    if not 0 <= a.vrun_similar <= 1:
        raise ValueError(f"--vrun-similar must be 0-1, got {a.vrun_similar:g}")
    if not 0 <= a.v_alone_p <= 1:
        raise ValueError(f"--v-alone-p must be 0-1, got {a.v_alone_p:g}")
    for name in ("veb_episode_s", "chain_s", "chain_ahead_s"):
        if not 0 <= getattr(a, name) <= 3600:
            raise ValueError(f"--{name.replace('_', '-')} must be 0-3600 s, got {getattr(a, name):g}")
    return replace(_A, veb_per_min=a.veb_per_min, veb_clear_per_min=min(_A.veb_clear_per_min, a.veb_per_min // 2),
                   vrun_len=a.vrun_len, vrun_similar=a.vrun_similar, vrun_bpm=a.vrun_bpm,
                   svt_run_len=a.svt_run_len,
                   pattern_cycles=a.pattern_cycles,
                   couplet=not a.no_couplet, run_len=a.run_len, other_per_min=a.other_per_min,
                   clear_normal=a.clear_after, beat_alarm=a.beat_alarm, sv_prem=a.sv_prem, v_alone_p=a.v_alone_p,
                   sv_unflagged=a.sv_unflagged, veb_episode_s=a.veb_episode_s, chain_s=a.chain_s,
                   chain_ahead_s=a.chain_ahead_s, vrun_reannounce=a.vrun_reannounce,
                   **prio)


def lethal_from_args(a: argparse.Namespace) -> LethalConfig:
    """The lethal and rate alarm thresholds, checked: rates 20-300 bpm, low under high, times 1-60 s."""
    for name in ("brady_bpm", "tachy_bpm", "vt_bpm", "hr_low", "hr_high"):
        if not 20 <= getattr(a, name) <= 300:
            raise ValueError(f"--{name.replace('_', '-')} must be 20-300 bpm, got {getattr(a, name):g}")
    for name in ("asystole_s", "pause_s"):
        if not 1 <= getattr(a, name) <= 60:
            raise ValueError(f"--{name.replace('_', '-')} must be 1-60 s, got {getattr(a, name):g}")
    for name in ("brady_beats", "tachy_beats"):
        if not 3 <= getattr(a, name) <= 30:
            raise ValueError(f"--{name.replace('_', '-')} must be 3-30 beats, got {getattr(a, name)}")
    if a.hr_low >= a.hr_high:
        raise ValueError(f"--hr-low {a.hr_low:g} must be under --hr-high {a.hr_high:g}")
    # thresholds that contradict each other (a newcomer, session 25: --tachy-bpm 30 raised "extreme tachycardia"
    # at 45 bpm beside "heart rate low"; --pause-s 10 over --asystole-s 4 could never be raised)
    # (each rule broken named, not all three: --brady-bpm 300 was told "--tachy-bpm over --hr-low" too; a newcomer,
    # session 57; the last two are LethalConfig.limits_agree's, which a bed's limits over MQTT are checked by)
    tachy_ok, brady_ok = replace(_X, brady_bpm=a.brady_bpm, tachy_bpm=a.tachy_bpm).limit_checks(a.hr_low, a.hr_high)
    broken = [rule for ok, rule in (
        (a.brady_bpm < a.tachy_bpm, f"--brady-bpm {a.brady_bpm:g} must be under --tachy-bpm {a.tachy_bpm:g}"),
        (tachy_ok, f"--tachy-bpm {a.tachy_bpm:g} must be over --hr-low {a.hr_low:g}"),
        (brady_ok, f"--brady-bpm {a.brady_bpm:g} must be under --hr-high {a.hr_high:g}")) if not ok]
    if broken:
        raise ValueError("; ".join(broken))
    if not 0 <= a.pause_wait_s <= 3:
        raise ValueError(f"--pause-wait-s must be 0-3 s, got {a.pause_wait_s:g}")
    if a.pause_s > a.asystole_s:
        raise ValueError(f"--pause-s {a.pause_s:g} must be at most --asystole-s {a.asystole_s:g} (no QRS for longer "
                         "is asystole)")
    if not 0 < a.vt_clear_share <= 1:
        raise ValueError(f"--vt-clear-share must be over 0 and at most 1, got {a.vt_clear_share:g}")
    if a.rate_gap_s is not None and not 1 <= a.rate_gap_s <= 60:
        raise ValueError(f"--rate-gap-s must be 1-60 s, got {a.rate_gap_s:g}")
    for name in ("rate_episode_s", "chain_s", "rate_resolved_s"):
        if not 0 <= getattr(a, name) <= 3600:
            raise ValueError(f"--{name.replace('_', '-')} must be 0-3600 s, got {getattr(a, name):g}")
    if not 0 < a.vt_p <= 1 or not 0 <= a.vt_similar <= 1 or not 0 <= a.vt_misread <= 3 or a.vt_misread_rr <= 0:
        raise ValueError(f"--vt-p must be over 0 and at most 1, --vt-similar 0-1, --vt-misread 0-3 and --vt-misread-rr "
                         f"over 0; got {a.vt_p:g}, {a.vt_similar:g}, {a.vt_misread}, {a.vt_misread_rr:g}")
    if not (a.vt_wide_ms == 0 or 100 <= a.vt_wide_ms <= 300):
        raise ValueError(f"--vt-wide-ms must be 0 (off) or 100-300 ms, got {a.vt_wide_ms:g}")
    if not 0 < a.vt_wide_regular <= 1 or not 0 <= a.vt_wide_similar <= 1:
        raise ValueError(f"--vt-wide-regular must be over 0 and at most 1, --vt-wide-similar 0-1; got "
                         f"{a.vt_wide_regular:g}, {a.vt_wide_similar:g}")
    if not 0 <= a.vt_sustain_corr <= 1 or not -1 <= a.vt_sustain_jump <= 1:
        raise ValueError(f"--vt-sustain-corr must be 0 (off) to 1 and --vt-sustain-jump -1 to 1, got "
                         f"{a.vt_sustain_corr:g}, {a.vt_sustain_jump:g}")
    if not 0 <= a.vt_turn <= 1 or not 0 <= a.vt_odd_beats <= 7:
        raise ValueError(f"--vt-turn must be 0 (off) to 1 and --vt-odd-beats 0-7, got {a.vt_turn:g}, "
                         f"{a.vt_odd_beats}")
    if not 0 <= a.vt_regular <= 2:
        raise ValueError(f"--vt-regular must be 0-2, got {a.vt_regular:g}")
    if not (a.vt_clear_bpm == 0 or 20 <= a.vt_clear_bpm <= 300):
        raise ValueError(f"--vt-clear-bpm must be 0 (off) or 20-300 bpm, got {a.vt_clear_bpm:g}")
    if not (a.vt_episode_s == 0 or 5 <= a.vt_episode_s <= 3600):
        raise ValueError(f"--vt-episode-s must be 0 (off) or 5-3600 s, got {a.vt_episode_s:g}")
    if not (a.tachy_resolved_beats == 0 or 2 <= a.tachy_resolved_beats <= 100):
        raise ValueError(f"--tachy-resolved-beats must be 0 (off) or 2-100 beats, got {a.tachy_resolved_beats}")
    if not 5 <= a.rate_resolved_bpm <= 100:
        raise ValueError(f"--rate-resolved-bpm must be 5-100 bpm, got {a.rate_resolved_bpm:g}")
    if not 0 <= a.cannot_analyse_s <= 600:
        raise ValueError(f"--cannot-analyse-s must be 0-600 s, got {a.cannot_analyse_s:g}")
    if not 3 <= a.vf_episode_s <= 600:
        raise ValueError(f"--vf-episode-s must be 3-600 s, got {a.vf_episode_s:g}")
    if not (a.vf_organised_bpm == 0 or 20 <= a.vf_organised_bpm <= 300):
        raise ValueError(f"--vf-organised-bpm must be 0 (off) or 20-300 bpm, got {a.vf_organised_bpm:g}")
    return replace(_X, asystole_s=a.asystole_s, brady_bpm=a.brady_bpm, tachy_bpm=a.tachy_bpm, vt_bpm=a.vt_bpm,
                   brady_beats=a.brady_beats, tachy_beats=a.tachy_beats,
                   hr_low=a.hr_low, hr_high=a.hr_high, pause_s=a.pause_s, pause_wait_s=a.pause_wait_s,
                   vt_clear_share=a.vt_clear_share,
                   rate_gap_s=a.rate_gap_s, asystole_artifact=not a.no_asystole_artifact,
                   noisy_rates=not a.rates_in_noise, chain_s=a.chain_s, rate_episode_s=a.rate_episode_s,
                   rate_resolved_bpm=a.rate_resolved_bpm, rate_resolved_s=a.rate_resolved_s,
                   tachy_resolved_beats=a.tachy_resolved_beats,
                   pause_artifact=not a.no_pause_artifact,
                   vt_artifact_holds=not a.vt_artifact_clears, vt_artifact_slow=not a.vt_artifact_slow_holds,
                   vt_p=a.vt_p, vt_misread=a.vt_misread,
                   vt_misread_rr=a.vt_misread_rr, vt_similar=a.vt_similar, vt_clear_bpm=a.vt_clear_bpm,
                   vt_episode_s=a.vt_episode_s, vt_wide_s=a.vt_wide_ms / 1000 if a.vt_wide_ms else None,
                   vt_wide_regular=a.vt_wide_regular, vt_wide_similar=a.vt_wide_similar,
                   vt_regular=a.vt_regular, vt_sustain=not a.no_vt_sustain, vt_wide_holds=not a.no_vt_wide_hold,
                   vt_sustain_corr=a.vt_sustain_corr or None, vt_sustain_jump=a.vt_sustain_jump,
                   vt_turn=a.vt_turn or None, vt_odd_beats=a.vt_odd_beats,
                   vt_held_unanalysable=a.vt_held_unanalysable,
                   tachy_held_unanalysable=a.tachy_held_unanalysable, second_lead_vt=a.second_lead_vt,
                   second_lead_veto=a.second_lead_veto,
                   vt_noisy=a.vt_noisy, organised_bpm=a.vf_organised_bpm,
                   vf_episode_s=a.vf_episode_s, cannot_analyse_s=a.cannot_analyse_s)


def _learn_state(value: Path | None) -> Path | None:
    """``--learn-state``: not given, the default file (:func:`default_learn_state`); ``none`` (any case), nothing kept;
    else that file.  (``str(None)`` is "None" too: the unset option must be told apart from the word before it.)"""
    if value is None:
        return default_learn_state()
    return None if str(value).lower() == "none" else value


def check_duration(duration: float | None) -> None:
    """``--duration``: None (no limit) or a finite number of seconds over 0, else a ValueError naming it."""
    if duration is not None and not (math.isfinite(duration) and duration > 0):
        raise ValueError(f"--duration {duration}: needs a finite number of seconds over 0")


def _check_run_options(a: argparse.Namespace) -> None:
    """The run's numbers, each named when it is not one a run can have (``--duration inf`` overflowed, ``--chunk 0``
    ran 15x slower, ``--patients 0`` or ``--duration -5`` judged nothing in silence, ``--threads -2`` gave torch's
    message)."""
    def bad(name: str, value: object, need: str) -> ValueError:
        return ValueError(f"--{name} {value}: {need}")
    check_duration(a.duration)
    if not (math.isfinite(a.start) and a.start >= 0):
        raise bad("start", a.start, "needs a finite number of seconds, 0 or more")
    if not (math.isfinite(a.chunk_s) and 0.01 <= a.chunk_s <= 10):
        raise bad("chunk", a.chunk_s, "needs 0.01-10 s")
    if a.patients < 1:
        raise bad("patients", a.patients, "needs 1 or more beds")
    if a.max_beats is not None and a.max_beats < 1:
        raise bad("max-beats", a.max_beats, "needs 1 or more")
    if a.threads is not None and a.threads < 1:
        raise bad("threads", a.threads, "needs 1 or more")
    if a.journal is not None and Path(a.journal).is_dir():
        raise bad("journal", a.journal, f"is a folder: give a file in it, e.g. {Path(a.journal) / 'alarms.jsonl'}")
    if not (math.isfinite(a.learn_s) and a.learn_s >= 0):
        raise bad("learn", a.learn_s, "needs a finite number of seconds, 0 or more (0: no per-bed learning)")
    if not (math.isfinite(a.bridge_s) and 0 <= a.bridge_s <= 2):
        raise bad("bridge-s", a.bridge_s, "needs 0-2 s (a longer gap may hide a pause)")


def from_args(a: argparse.Namespace) -> MonitorConfig:
    ui = not a.no_ui
    _check_run_options(a)
    if a.source == "record" and not a.records:
        raise ValueError("--source record needs one or more PATHs (records, folders or CSV files)")
    if a.records and a.source != "record":
        raise ValueError(f"PATH arguments are for --source record, not --source {a.source}")
    if a.workers < 1 or (a.workers > 1 and a.source != "mqtt"):
        raise ValueError(f"--workers {a.workers}: needs --source mqtt and N >= 1 (NATS workers: --source nats)")
    if a.workers > 1 and a.shard:
        raise ValueError("--workers and --shard exclude each other: --workers N divides the devices by itself")
    if a.shard and a.source not in ("mqtt", "nats"):
        raise ValueError(f"--shard is for --source nats (or the deprecated MQTT sharding), not --source {a.source}")
    if a.shard and a.source == "nats" and getattr(a, "prefer", None) is not None:
        raise ValueError("--shard and --prefer exclude each other: --shard I/N is the partitions p % N == I")
    return MonitorConfig(
        source=a.source, records=tuple(a.records), lead=a.lead, second_lead=a.second_lead, units=a.units,
        start=a.start, patients=a.patients,
        abnormal_rate=parse_rate(a.abnormal_rate),
        csv_fs=None if a.source != "record" or a.fs is None else check_record_fs(a.fs, "--fs"),
        fs=_M.fs if a.fs is None or a.source == "record" else check_fs(a.fs, "--fs"),
        speed=parse_speed(a.speed), seed=a.seed,
        chunk_s=a.chunk_s,
        loop=a.source == "replay" and (a.loop or (ui and a.duration is None and a.max_beats is None)),
        checkpoint=a.checkpoint, device=a.device,
        learning=replace(_L, learn_s=a.learn_s),
        # a recording's name says nothing of whose it is (two files named ecg.csv, two patients): its beds learn
        # afresh each run unless --learn-state names a file
        learn_state=None if a.source == "record" and a.learn_state is None else _learn_state(a.learn_state),
        threads=a.threads, workers=a.workers, duration=a.duration, ui=ui, bell=not a.no_bell,
        journal=a.journal or default_journal(),
        pipeline=replace(_P, max_batch=a.max_batch, max_wait_ms=a.max_wait_ms, max_beats=a.max_beats,
                         hold_at_end=ui, bridge_s=a.bridge_s),
        policy=policy_from_args(a),
        lethal=lethal_from_args(a),
        broker=broker_from_args(a, monitor=True) if a.source == "mqtt" else None,
        nats=nats_from_args(a) if a.source == "nats" else None,
    )
