"""Fault injection: kill each corpus-scale command at random moments, rerun it, compare with a clean run.

A cluster user meets SIGKILL (node failure, OOM killer) and SIGTERM (time limit,
pre-emption, ``scancel``) at any moment. For each of ``cm degrade``, ``cm manifest``,
``cm embed`` and ``cm eval --run`` this script:

1. runs the command once to completion into ``clean/`` (the reference) and times it;
2. for each trial, starts it into a fresh ``trial-K/`` directory, waits a random time in
   [5 %, 95 %] of the clean run's duration, sends SIGKILL (to the whole process group,
   as a node failure would) or SIGTERM (to the main process, as ``scancel`` does first),
   then reruns the same command line until it exits 0 (at most 3 reruns);
3. checks that the rerun's tables equal the clean run's (rows sorted by ``utt_id``;
   paths under the output directory compared relative to it) and, for ``degrade``, that
   every audio file decodes to the same samples; and that no lock or temporary file is
   left behind. A SIGTERM should end the command with exit 143 and one line (degrade;
   a command that does not handle it yet is noted, and its rerun must still be right).

Small toy sizes, CPU only::

    python benchmarks/fault_injection.py --trials 3 --seed 0            # all four commands
    python benchmarks/fault_injection.py --commands degrade embed --keep /tmp/fi

Exit status 1 when any trial's rerun differs from the clean run (the report says which).

``--hostile`` runs the hostile-input check instead (issue 29): the same utterances plus
files no result should come from (NaN samples, Inf samples, a WAV whose data chunk was
cut, a WAV cut inside its header, a 10 ms clip) go through ``cm degrade`` (mp3, two
workers: LAME aborts on NaN), ``cm embed``, ``cm eval --run`` on a manifest and
``cm eval --run --audio`` on a folder. Each command must end (exit below 128) with the
hostile rows listed as failures (the 10 ms clip may be coded, and scored where the
model's length policy pads it in manifest mode; ``eval --audio`` refuses it), and the good rows must equal a run
on the clean corpus: same degraded samples, embeddings and scores::

    python benchmarks/fault_injection.py --hostile --utterances 8
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMMANDS = ("degrade", "manifest", "embed", "eval")


def _env(work: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CM_", "SLURM_"))}
    env.update(
        PYTHONPATH=str(REPO),
        CM_DATA_ROOT=str(work / "data"),
        CM_RUNS_DIR=str(work / "runs"),
        CM_CACHE_DIR=str(work / "cache"),
        CM_DEVICE="cpu",
        CM_WORKERS="2",
    )
    return env


def _cm(*args: str) -> list[str]:
    return [sys.executable, "-m", "cm_cli", *args]


def setup(work: Path, n_utts: int, *, toy: bool = True) -> dict:
    """Synthetic utterances and their manifest, a random-initialised LCNN run, and the toy corpus."""
    import numpy as np
    import pandas as pd
    import soundfile as sf
    import torch

    sys.path.insert(0, str(REPO))
    from cm_cli.core.artifacts import write_parquet
    from cm_cli.data.manifest import normalise_manifest
    from cm_cli.models.checkpoint import save_checkpoint
    from cm_cli.models.model import ModelConfig, build_model

    audio = work / "audio"
    audio.mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n_utts):
        label = "bonafide" if i % 3 == 0 else "spoof"
        t = np.arange(int(16000 * rng.uniform(0.8, 1.6))) / 16000
        wave = 0.3 * np.sin(2 * np.pi * (150 + 7 * i) * t) if label == "bonafide" else 0.2 * rng.standard_normal(len(t))
        sf.write(audio / f"u{i:03d}.flac", wave.astype(np.float32), 16000)
        rows.append(
            {
                "utt_id": f"u{i:03d}",
                "path": str(audio / f"u{i:03d}.flac"),
                "label": label,
                "attack": None if label == "bonafide" else ("A01" if i % 2 else "A02"),
                "speaker": f"s{i % 5}",
                "split": "eval",
                "corpus": "toy",
                "codec": None,
                "codec_q": None,
                "domain": "clean",
            }
        )
    manifest = work / "manifest.parquet"
    write_parquet(normalise_manifest(pd.DataFrame(rows)), manifest)
    torch.manual_seed(0)
    run = work / "run"
    save_checkpoint(run / "checkpoints" / "best.pt", build_model(ModelConfig(backbone="lcnn")))
    if toy:  # only `cm manifest` needs the toy corpus
        out = subprocess.run(
            _cm("download", "toy", "--size", "small", "--clean-only"),
            env=_env(work),
            capture_output=True,
            text=True,
            timeout=1800,
        )
        if out.returncode != 0:
            raise SystemExit(f"toy corpus: {out.stderr.strip()}")
    return {"manifest": manifest, "run": run}


def command_line(name: str, inputs: dict, out: Path) -> list[str]:
    if name == "degrade":
        return _cm(
            "degrade",
            "--manifest",
            str(inputs["manifest"]),
            "--out",
            str(out),
            "--chain",
            "mp3:kbps=32",
            "--chain",
            "telephony",
            "-j",
            "2",
        )
    if name == "manifest":
        return _cm("manifest", "--corpus", "toy", "--validate", "--out", str(out))
    if name == "embed":
        return _cm(
            "embed",
            "--manifest",
            str(inputs["manifest"]),
            "--checkpoint",
            str(inputs["run"]),
            "--out",
            str(out),
            "--fp32",
            "--workers",
            "0",
        )
    if name == "eval":
        return _cm(
            "eval",
            "--run",
            str(inputs["run"]),
            "--manifest",
            str(inputs["manifest"]),
            "--split",
            "eval",
            "--out",
            str(out),
        )
    raise ValueError(name)


def snapshot(out: Path) -> dict:
    """Every Parquet table and JSON result under ``out``, normalised for comparison, plus decoded audio."""
    import numpy as np
    import pandas as pd
    import soundfile as sf

    tables, audio, results = {}, {}, {}
    for path in sorted(out.rglob("*.parquet")):
        if any(part.startswith(".") for part in path.relative_to(out).parts):
            continue
        frame = pd.read_parquet(path)
        for column in frame.columns:
            if frame[column].dtype == object or pd.api.types.is_string_dtype(frame[column]):
                frame[column] = frame[column].map(lambda v: v.replace(str(out), "<out>") if isinstance(v, str) else v)
        if "utt_id" in frame.columns:
            frame = frame.sort_values("utt_id").reset_index(drop=True)
        tables[str(path.relative_to(out))] = frame
    for path in sorted(out.rglob("*.flac")):
        audio[str(path.relative_to(out))] = sf.read(path, dtype="float32")[0]
    for path in sorted(out.rglob("metrics.json")):
        data = json.loads(path.read_text())
        for key in ("timing", "started", "finished", "elapsed_s", "run", "out"):
            data.pop(key, None)
        results[str(path.relative_to(out))] = json.dumps(data, sort_keys=True, default=str).replace(str(out), "<out>")
    return {"tables": tables, "audio": audio, "results": results, "np": np}


def differences(clean: dict, trial: dict) -> list[str]:
    import pandas as pd

    found = []
    for kind in ("tables", "audio", "results"):
        if set(clean[kind]) != set(trial[kind]):
            found.append(f"{kind}: files differ ({sorted(set(clean[kind]) ^ set(trial[kind]))[:4]})")
    for name in set(clean["tables"]) & set(trial["tables"]):
        try:
            pd.testing.assert_frame_equal(clean["tables"][name], trial["tables"][name], check_like=True)
        except AssertionError as exc:
            found.append(f"{name}: {str(exc).splitlines()[0]}")
    for name in set(clean["audio"]) & set(trial["audio"]):
        if not clean["np"].array_equal(clean["audio"][name], trial["audio"][name]):
            found.append(f"{name}: audio differs")
    for name in set(clean["results"]) & set(trial["results"]):
        if clean["results"][name] != trial["results"][name]:
            found.append(f"{name}: metrics differ")
    return found


def leftovers(out: Path) -> list[str]:
    names = []
    for path in out.rglob(".*"):
        if path.is_file() and not path.name.startswith(".committed") and path.parent.name != ".cm_unpacked":
            names.append(str(path.relative_to(out)))
    return names


def trial(name: str, inputs: dict, work: Path, out: Path, delay: float, sig: int) -> dict:
    env = _env(work)
    cmd = command_line(name, inputs, out)
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    time.sleep(delay)
    killed = proc.poll() is None
    if killed:
        if sig == signal.SIGKILL:
            os.killpg(proc.pid, signal.SIGKILL)  # the whole job, workers included, as a node failure would
        else:
            proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=600)
    first = proc.returncode
    reruns = 0
    while True:
        reruns += 1
        again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
        if again.returncode == 0 or reruns >= 3:
            break
    return {
        "killed": killed,
        "first_exit": first,
        "first_stderr": stderr.strip().splitlines()[-1:] if stderr else [],
        "rerun_exit": again.returncode,
        "rerun_stderr": again.stderr.strip().splitlines()[-1:],
        "reruns": reruns,
    }


HOSTILE = ("nan", "inf", "cut", "header", "tiny")


def hostile_files(folder: Path) -> dict[str, Path]:
    """The hostile files of ``HOSTILE``, written into ``folder``."""
    import numpy as np
    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    tone = (0.3 * np.sin(2 * np.pi * 200 * np.arange(16000) / 16000)).astype(np.float32)
    out = {}
    for name, value in (("nan", np.nan), ("inf", np.inf)):
        wave = tone.copy()
        wave[500] = value
        sf.write(folder / f"h_{name}.wav", wave, 16000, subtype="FLOAT")
        out[name] = folder / f"h_{name}.wav"
    sf.write(folder / "h_cut.wav", tone, 16000)
    data = (folder / "h_cut.wav").read_bytes()
    (folder / "h_cut.wav").write_bytes(data[: len(data) // 2])
    (folder / "h_header.wav").write_bytes(data[:30])
    sf.write(folder / "h_tiny.wav", tone[:160], 16000)
    out.update(cut=folder / "h_cut.wav", header=folder / "h_header.wav", tiny=folder / "h_tiny.wav")
    return out


def hostile_check(work: Path, inputs: dict) -> list[str]:
    """Problems found running the commands over the corpus plus hostile files (module docstring); [] when none."""
    import pandas as pd

    sys.path.insert(0, str(REPO))
    from cm_cli.core.artifacts import write_parquet
    from cm_cli.data.manifest import normalise_manifest

    clean_manifest = pd.read_parquet(inputs["manifest"])
    files = hostile_files(work / "hostile")
    rows = [
        {
            **clean_manifest.iloc[0].to_dict(),
            "utt_id": f"h_{name}",
            "path": str(path),
            "duration": None,
            "sample_rate": None,
        }
        for name, path in files.items()
    ]
    dirty = work / "dirty.parquet"
    write_parquet(normalise_manifest(pd.concat([clean_manifest, pd.DataFrame(rows)], ignore_index=True)), dirty)
    folder_clean, folder_dirty = work / "folder_clean", work / "folder_dirty"
    for folder in (folder_clean, folder_dirty):
        folder.mkdir(exist_ok=True)
        for path in clean_manifest["path"]:
            shutil.copy(path, folder / Path(path).name)
    for path in files.values():
        shutil.copy(path, folder_dirty / path.name)
    hostile_ids = {f"h_{name}" for name in HOSTILE}
    problems: list[str] = []

    def run(name: str, args: list[str]) -> subprocess.CompletedProcess:
        done = subprocess.run(_cm(*args), env=_env(work), capture_output=True, text=True, timeout=1800)
        if not 0 <= done.returncode < 128 or "Traceback" in done.stderr:
            problems.append(f"{name}: exit {done.returncode}: {done.stderr.strip()[-300:]}")
        return done

    for name, make in (
        (
            "degrade",
            lambda m, o: ["degrade", "--manifest", str(m), "--out", str(o), "--chain", "mp3:kbps=32", "-j", "2"],
        ),
        (
            "embed",
            lambda m, o: [
                "embed",
                "--manifest",
                str(m),
                "--checkpoint",
                str(inputs["run"]),
                "--out",
                str(o),
                "--fp32",
                "--workers",
                "0",
            ],
        ),
        (
            "eval",
            lambda m, o: [
                "eval",
                "--run",
                str(inputs["run"]),
                "--manifest",
                str(m),
                "--split",
                "eval",
                "--out",
                str(o),
            ],
        ),
    ):
        outs = {}
        for kind, manifest in (("clean", inputs["manifest"]), ("dirty", dirty)):
            outs[kind] = work / "hostile_runs" / name / kind
            run(f"{name} ({kind})", make(manifest, outs[kind]))
        failed = set()
        for path in outs["dirty"].rglob("failures*.parquet"):
            table = pd.read_parquet(path)
            failed |= set(table.get("source_utt_id", table.get("utt_id", pd.Series(dtype=str))).astype(str))
        missing = hostile_ids - failed - {"h_tiny"}  # a 10 ms clip can be coded, and is padded in manifest mode
        if missing:
            problems.append(f"{name}: hostile rows not listed as failures: {sorted(missing)}")
        clean, dirty_snap = snapshot(outs["clean"]), snapshot(outs["dirty"])
        for table_name, frame in clean["tables"].items():
            if "failures" in table_name or "utt_id" not in frame.columns:
                continue
            other = dirty_snap["tables"].get(table_name)
            if other is None:
                problems.append(f"{name}: {table_name} missing from the hostile run")
                continue
            key = "source_utt_id" if "source_utt_id" in other.columns else "utt_id"
            good = other[~other[key].astype(str).isin(hostile_ids)].reset_index(drop=True)
            drop = [c for c in good.columns if c in ("path",)]  # degraded paths sit under another --out
            left, right = (
                frame.drop(columns=drop, errors="ignore").reset_index(drop=True),
                good.drop(columns=drop, errors="ignore"),
            )
            # vectors (embeddings) compared to float32 rounding: a batch of other composition may move the last bit
            vectors = [
                c
                for c in left.columns
                if len(left) and hasattr(left[c].iloc[0], "__len__") and not isinstance(left[c].iloc[0], str)
            ]
            for column in vectors:
                if (
                    column not in right
                    or len(right) != len(left)
                    or not clean["np"].allclose(
                        clean["np"].stack(left[column].to_numpy()),
                        clean["np"].stack(right[column].to_numpy()),
                        rtol=1e-5,
                        atol=1e-6,
                    )
                ):
                    problems.append(f"{name}: good rows of {table_name} differ in {column}")
            try:
                pd.testing.assert_frame_equal(
                    left.drop(columns=vectors),
                    right.drop(columns=vectors, errors="ignore"),
                    check_like=True,
                    check_dtype=False,
                    check_categorical=False,
                    check_exact=False,
                    rtol=1e-5,
                    atol=1e-6,
                )
            except AssertionError as exc:
                problems.append(f"{name}: good rows of {table_name} differ: {str(exc).splitlines()[0]}")
        for audio_name, wave in clean["audio"].items():
            if not clean["np"].array_equal(wave, dirty_snap["audio"].get(audio_name, clean["np"].zeros(0))):
                problems.append(f"{name}: {audio_name} differs from the clean run")
    scored = {}
    for kind, folder in (("clean", folder_clean), ("dirty", folder_dirty)):
        done = run(f"eval --audio ({kind})", ["--json", "eval", "--run", str(inputs["run"]), "--audio", str(folder)])
        payload = json.loads(done.stdout or "{}")
        scored[kind] = {Path(r["path"]).name: r["score"] for r in payload.get("scores", [])}
        if kind == "dirty":
            failed = {Path(f["path"]).name for f in payload.get("failures", [])}
            if failed != {p.name for p in files.values()}:
                problems.append(f"eval --audio: failures {sorted(failed)}, expected every hostile file")
            if "NaN" in done.stdout.replace("NaN/Inf", ""):
                problems.append("eval --audio: a NaN reached the output")
    if scored.get("clean") != scored.get("dirty"):
        problems.append("eval --audio: the good files' scores differ from the clean folder's")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commands", nargs="+", choices=COMMANDS, default=list(COMMANDS))
    parser.add_argument("--trials", type=int, default=3, help="interruptions per command")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill moments and signals")
    parser.add_argument("--utterances", type=int, default=24)
    parser.add_argument("--keep", type=Path, default=None, help="work directory to keep (default: a temporary one)")
    parser.add_argument(
        "--hostile",
        action="store_true",
        help="feed NaN, Inf, cut, headerless and 10 ms files instead of killing (module docstring)",
    )
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    work = args.keep or Path(tempfile.mkdtemp(prefix="cm-fault-"))
    work.mkdir(parents=True, exist_ok=True)
    inputs = setup(work, args.utterances, toy=not args.hostile)
    if args.hostile:
        problems = hostile_check(work, inputs)
        for line in problems:
            print(line)
        print(
            "hostile input: every command ended, hostile rows were failures, good rows equal the clean run"
            if not problems
            else f"hostile input: {len(problems)} problem(s)"
        )
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        return 1 if problems else 0
    failures = 0
    report = []
    for name in args.commands:
        clean_out = work / name / "clean"
        start = time.perf_counter()
        done = subprocess.run(
            command_line(name, inputs, clean_out), env=_env(work), capture_output=True, text=True, timeout=1800
        )
        duration = time.perf_counter() - start
        if done.returncode != 0:
            print(f"{name}: the clean run failed: {done.stderr.strip()[-500:]}")
            return 1
        clean = snapshot(clean_out)
        for k in range(args.trials):
            out = work / name / f"trial-{k}"
            delay = rng.uniform(0.05, 0.95) * duration
            sig = rng.choice([signal.SIGKILL, signal.SIGTERM])
            outcome = trial(name, inputs, work, out, delay, sig)
            problems = (
                [] if outcome["rerun_exit"] == 0 else [f"rerun exit {outcome['rerun_exit']}: {outcome['rerun_stderr']}"]
            )
            if not problems:
                problems = differences(clean, snapshot(out)) + [f"left behind: {x}" for x in leftovers(out)]
            notes = []
            if outcome["killed"] and sig == signal.SIGTERM:
                if outcome["first_exit"] == 143:
                    notes.append("stopped cleanly (143)")
                elif outcome["first_exit"] == -signal.SIGTERM:
                    notes.append("SIGTERM not handled (exit -15)")  # the rerun must still repair it
                else:
                    problems.append(f"SIGTERM exit {outcome['first_exit']}: {outcome['first_stderr']}")
            failures += bool(problems)
            line = (
                f"{name:8s} trial {k}: {signal.Signals(sig).name:7s} at {delay:5.1f} s of {duration:5.1f} s"
                f" ({'killed' if outcome['killed'] else 'had finished'}{', ' + ', '.join(notes) if notes else ''}),"
                f" reruns {outcome['reruns']}: "
                + ("identical to the clean run" if not problems else "; ".join(problems[:4]))
            )
            print(line, flush=True)
            report.append(line)
            shutil.rmtree(out, ignore_errors=True) if not args.keep else None
    print(
        f"{failures} of {len(report)} trials differ from the clean run"
        if failures
        else f"all {len(report)} trials reran to outputs identical to clean runs"
    )
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
