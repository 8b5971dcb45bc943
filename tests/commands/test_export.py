"""`cm export RUN --out DIR`: a Hugging Face-style folder with a model card that loads back, and --push."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import yaml

from cm_cli.core.artifacts import write_parquet
from cm_cli.data.manifest import normalise_manifest


def _run(folder, seed: int):
    import torch

    from cm_cli.core.artifacts import write_json
    from cm_cli.models.checkpoint import save_checkpoint
    from cm_cli.models.model import ModelConfig, build_model

    torch.manual_seed(seed)
    save_checkpoint(
        folder / "checkpoints" / "best.pt",
        build_model(ModelConfig(backbone="lcnn")),
        metrics={"dev_eer": 0.2, "dev_eer_threshold": 0.125},
    )
    write_json(
        {
            "train": {"seed": seed, "corpus": "toy", "method": "erm", "epochs": 1},
            "preset": None,
            "seen_domains": ["clean"],
            "augment_conditions": [],
            "manifest": str(folder / "m.parquet"),
        },
        folder / "config.json",
    )
    return folder


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    rng = np.random.default_rng(0)
    rows = []
    for i in range(12):
        label = "bonafide" if i % 3 == 0 else "spoof"
        t = np.arange(int(16000 * rng.uniform(0.6, 1.0))) / 16000
        tone = 0.3 * np.sin(2 * np.pi * (150 + 20 * i) * t)
        wave = tone if label == "bonafide" else 0.2 * rng.standard_normal(len(t))
        sf.write(root / f"u{i:02d}.wav", wave.astype(np.float32), 16000)
        rows.append(
            {
                "utt_id": f"u{i:02d}",
                "path": f"u{i:02d}.wav",
                "label": label,
                "attack": None if label == "bonafide" else ("A01" if i % 2 else "A02"),
                "speaker": f"s{i % 4}",
                "split": "eval",
                "corpus": "toy",
                "codec": None,
                "codec_q": None,
                "domain": "clean",
            }
        )
    write_parquet(normalise_manifest(pd.DataFrame(rows)), root / "manifest.parquet")
    return root, _run(root / "run", 3), _run(root / "other", 4)


def _front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n")[1])


def test_export_card_lists_every_evaluation_of_the_run_and_loads_back(setup, run_cm, cm_env):
    root, run, other = setup
    manifest = root / "manifest.parquet"
    common = ["--data-root", root, "--json", "eval", "--manifest", manifest]
    assert run_cm(*common, "--run", run, "--by", "attack", "--out", run / "eval" / "eval").exit_code == 0
    elsewhere = cm_env / "evals" / "again"
    assert run_cm(*common, "--run", run, "--out", elsewhere, "--degrade", "gain:db=-6").exit_code == 0
    assert run_cm(*common, "--run", other, "--out", cm_env / "evals" / "other").exit_code == 0
    out = cm_env / "exported"
    result = run_cm("--json", "export", run, "--out", out, "--search", cm_env / "evals", "--licence", "mit")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    # the run's own eval, and the sweep's two conditions elsewhere; never the other run's
    assert len(payload["evaluations"]) == 3 and not any("other" in p for p in payload["evaluations"])
    assert {p.name for p in out.iterdir() if not p.name.startswith(".")} == {
        "model.safetensors",
        "config.json",
        "README.md",
        "cm.json",
    }
    assert json.loads((out / "cm.json").read_text())["kind"] == "model"
    card = (out / "README.md").read_text()
    front = _front_matter(card)
    assert front["license"] == "mit"
    [index] = front["model-index"]
    metrics = json.loads((run / "eval" / "eval" / "metrics.json").read_text())
    overall = [
        r
        for r in index["results"]
        if r["dataset"]["args"]["group"] == "overall" and r["dataset"]["args"]["condition"] == "clean"
    ]
    assert len(overall) == 2  # the run's own clean eval and the sweep's clean baseline
    for result_ in overall:
        values = {m["type"]: m["value"] for m in result_["metrics"]}
        assert values["eer"] == pytest.approx(metrics["overall"]["eer"])
        assert set(values) >= {"eer", "min_dcf", "act_dcf", "cllr", "auc", "n_bonafide", "n_spoof"}
        assert result_["dataset"]["name"] == "toy" and result_["dataset"]["args"]["model_seed"] == 3
        assert result_["dataset"]["args"]["cm_version"]
    groups = {r["dataset"]["args"]["group"]: r for r in index["results"]}
    a01 = {m["type"]: m["value"] for m in groups["attack=A01"]["metrics"]}
    assert a01["eer"] == pytest.approx(metrics["by"]["attack"]["A01"]["eer"])
    assert any(r["dataset"]["args"]["condition"] == "gain:db=-6" for r in index["results"])
    # the folder loads back through --run and scores exactly as the run does
    wav = root / "u00.wav"
    original = json.loads(run_cm("--json", "eval", "--run", run, "--audio", wav).stdout)
    result = run_cm("--json", "eval", "--run", out, "--audio", wav, "--out", cm_env / "d2")
    assert result.exit_code == 0, result.output
    exported = json.loads(result.stdout)
    assert exported["scores"][0]["score"] == original["scores"][0]["score"]
    assert exported["threshold"] == 0.125 and exported["threshold_source"] == "dev_eer"
    config = json.loads((out / "config.json").read_text())
    assert config["seen_domains"] == ["clean"] and "manifest" not in config and config["seed"] == 3
    # a rerun with the same options is skipped; other options need --force
    again = json.loads(
        run_cm("--json", "export", run, "--out", out, "--search", cm_env / "evals", "--licence", "mit").stdout
    )
    assert again["skipped"] is True
    refused = run_cm("export", run, "--out", out, "--licence", "cc-by-4.0")
    assert refused.exit_code == 1 and "--force" in refused.stderr


def test_exported_cm_json_travels_without_build_machine_paths_or_host(setup, run_cm, cm_env):
    import socket

    root, run, _ = setup
    manifest = root / "manifest.parquet"
    eval_dir = run / "eval" / "portable"
    assert run_cm("--data-root", root, "eval", "--manifest", manifest, "--run", run, "--out", eval_dir).exit_code == 0
    out = cm_env / "portable"
    result = run_cm("--json", "export", run, "--out", out)
    assert result.exit_code == 0, result.output
    text = (out / "cm.json").read_text()
    record = json.loads(text)
    assert "host" not in record and str(cm_env) not in text and str(root) not in text
    assert record["options"]["run"] == "run" and "run/eval/portable" in record["options"]["evaluations"]
    assert record["argv"][0] == "cm" and not any(Path(a).is_absolute() for a in record["argv"])
    assert {Path(f["path"]).parts[0] for f in record["inputs"]} == {"run"}
    assert all(f.get("sha256") for f in record["inputs"])  # contents still identified
    run_record = json.loads((run / "eval" / "portable" / "cm.json").read_text())
    assert run_record["host"] == socket.gethostname()  # the run's own records keep the machine
    again = json.loads(run_cm("--json", "export", run, "--out", out).stdout)  # still recognised as done
    assert again["skipped"] is True
    from cm_cli.models.export import portable_record

    argv = ["/usr/bin/cm", "export", str(run), f"--out={out}", "--notes", "a/b", str(eval_dir / "x.json")]
    assert portable_record({"argv": argv, "host": "h"}, [run.parent])["argv"] == [
        "cm",
        "export",
        f"{run.parent.name}/run",
        "--out=portable",
        "--notes",
        "a/b",
        f"{run.parent.name}/run/eval/portable/x.json",
    ]


def test_export_of_a_missing_run_is_one_line(run_cm, cm_env):
    result = run_cm("export", cm_env / "nope", "--out", cm_env / "x")
    assert result.exit_code == 1 and "nope" in result.stderr and "Traceback" not in result.output
    assert not (cm_env / "x").exists()


class StandInHub:
    """The three Hub API calls of ``upload_folder``: create repo, preupload, commit (NDJSON, base64 contents)."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.repos: list[str] = []
        self.auth: list[str] = []
        self.cards: list[dict] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _reply(self, obj) -> None:
                body = json.dumps(obj).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                hub.auth.append(self.headers.get("Authorization", ""))
                path = unquote(urlparse(self.path).path)
                if path == "/api/validate-yaml":  # the Hub checks the card's metadata block
                    hub.cards.append(yaml.safe_load(json.loads(raw)["content"].split("---\n")[1]))
                    return self._reply({"errors": [], "warnings": []})
                if path == "/api/repos/create":
                    body = json.loads(raw)
                    repo = "/".join(p for p in (body.get("organization"), body["name"]) if p)
                    hub.repos.append(repo)
                    return self._reply({"url": f"{hub.url}/{repo}"})
                if "/preupload/" in path:
                    files = json.loads(raw)["files"]
                    return self._reply(
                        {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]}
                    )
                if "/commit/" in path:
                    for line in raw.decode().splitlines():
                        item = json.loads(line)
                        if item.get("key") == "file":
                            hub.files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
                    repo = path.split("/api/models/", 1)[1].split("/commit/", 1)[0]
                    return self._reply(
                        {
                            "commitUrl": f"{hub.url}/{repo}/commit/{'c' * 40}",
                            "commitOid": "c" * 40,
                            "pullRequestUrl": None,
                        }
                    )
                self.send_response(404)
                self.end_headers()

            def _resolve(self):  # /<org>/<name>/resolve/<revision>/<file>
                parts = unquote(urlparse(self.path).path).strip("/").split("/")
                if len(parts) >= 5 and parts[2] == "resolve" and "/".join(parts[4:]) in hub.files:
                    return "/".join(parts[4:])
                return None

            def _file_headers(self, name: str) -> None:
                body = hub.files[name]
                self.send_header("X-Repo-Commit", "c" * 40)
                self.send_header("ETag", f'"{hashlib.sha256(body).hexdigest()}"')
                self.send_header("Content-Length", str(len(body)))

            def do_HEAD(self) -> None:
                name = self._resolve()
                self.send_response(200 if name else 404)
                if name:
                    self._file_headers(name)
                self.end_headers()

            def do_GET(self) -> None:
                path = unquote(urlparse(self.path).path)
                if path.startswith("/api/models/") and "/tree/" in path:  # the file listing of a revision
                    return self._reply(
                        [
                            {"type": "file", "path": f, "size": len(b), "oid": hashlib.sha1(b).hexdigest()}
                            for f, b in hub.files.items()
                        ]
                    )
                if path.startswith("/api/models/"):  # model info: the commit and its files
                    repo = path[len("/api/models/") :].split("/revision/")[0]
                    return self._reply({"id": repo, "sha": "c" * 40, "siblings": [{"rfilename": f} for f in hub.files]})
                name = self._resolve()
                if name is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(200)
                self._file_headers(name)
                self.end_headers()
                self.wfile.write(hub.files[name])

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def test_push_uploads_the_folder_and_a_hub_id_loads_it_back(setup, run_cm, cm_env, monkeypatch):
    from huggingface_hub import constants

    root, run, _ = setup
    monkeypatch.setenv("HF_HOME", str(cm_env / "hf"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    out = cm_env / "pushed"
    wav = root / "u03.wav"
    original = json.loads(run_cm("--json", "eval", "--run", run, "--audio", wav).stdout)["scores"][0]["score"]
    with StandInHub() as hub:
        refused = run_cm("export", run, "--out", out, "--push", "lab/toy-cm", "--endpoint", hub.url)
        assert refused.exit_code == 1 and "no Hugging Face token" in refused.stderr and not hub.repos
        assert not out.exists()  # refused before the export is written
        monkeypatch.setenv("HF_TOKEN", "hf_local_test_token")
        result = run_cm("--json", "export", run, "--out", out, "--push", "lab/toy-cm", "--endpoint", hub.url)
        assert result.exit_code == 0, result.output
        assert hub.repos == ["lab/toy-cm"] and all(a == "Bearer hf_local_test_token" for a in hub.auth)
        assert set(hub.files) == {"model.safetensors", "config.json", "README.md", "cm.json"}
        assert hub.files["README.md"] == (out / "README.md").read_bytes()
        assert hub.files["model.safetensors"] == (out / "model.safetensors").read_bytes()
        assert hub.cards and "model-index" in hub.cards[0]
        # `--model ORG/NAME` fetches the pushed folder into the cache and scores with it
        monkeypatch.setattr(constants, "ENDPOINT", hub.url)
        template = hub.url + "/{repo_id}/resolve/{revision}/{filename}"
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", template)
        result = run_cm("--json", "eval", "--model", "lab/toy-cm", "--audio", wav)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["scores"][0]["score"] == original
