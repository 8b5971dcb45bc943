"""`cm download` for real corpora through a local mirror (http.server on 127.0.0.1), plus --list and --model."""

from __future__ import annotations

import dataclasses
import json
import sys

import pytest

from cm_cli.data.corpora import sources
from tests.data.test_download import FileServer, make_tar, md5

KEYS = make_tar(
    {
        "keys/LA/CM/trial_metadata.txt": b"LA_0009 LA_E_9332881 alaw ita_tx A07 spoof notrim eval\n"
        b"LA_0020 LA_E_7294490 g722 loc_tx bonafide bonafide notrim eval\n"
    },
    gz=True,
)
AUDIO = make_tar(
    {"ASVspoof2021_LA_eval/flac/LA_E_9332881.flac": b"f1", "ASVspoof2021_LA_eval/flac/LA_E_7294490.flac": b"f2"},
    gz=True,
)


@pytest.fixture
def mirror(monkeypatch):
    """A mirror serving test archives; the LA source's published md5 is swapped for the test archive's."""
    with FileServer() as server:
        server.files["LA-keys-full.tar.gz"] = KEYS
        server.files["ASVspoof2021_LA_eval.tar.gz"] = AUDIO
        server.json["/api/records/4837263"] = {
            "files": [{"key": "ASVspoof2021_LA_eval.tar.gz", "checksum": "md5:" + md5(AUDIO), "size": len(AUDIO)}]
        }
        source = sources.CORPUS_SOURCES["asvspoof2021_la"]
        keys, audio = source.files
        patched = dataclasses.replace(source, files=(dataclasses.replace(keys, md5=md5(KEYS)), audio))
        monkeypatch.setitem(sources.CORPUS_SOURCES, "asvspoof2021_la", patched)
        monkeypatch.setattr("cm_cli.data.corpora.fetch.ZENODO_API", server.url + "/api/records")
        yield server


def test_list_shows_corpora_files_sizes_and_licences(cm_env, run_cm):
    result = run_cm("--json", "download", "--list")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    names = [c["corpus"] for c in payload["corpora"]]
    assert names == [
        "toy",
        "asvspoof5",
        "asvspoof2021_la",
        "asvspoof2021_df",
        "asvspoof2019_la",
        "in_the_wild",
        "mlaad",
        "codecfake",
        "codecfake_plus",
    ]
    as5 = payload["corpora"][1]
    assert len(as5["files"]) == 19 and all(f["checksum"] == "published" for f in as5["files"])
    assert "ODC-By" in as5["licence"]
    df = payload["corpora"][3]
    assert [f["name"] for f in df["files"]][1:] == [f"ASVspoof2021_DF_eval_part0{i}.tar.gz" for i in range(4)]
    human = run_cm("download", "--list")
    assert "flac_E_aj.tar" in human.stdout and "LA.zip" in human.stdout


def test_protocols_subset_downloads_and_unpacks_into_the_manifest_layout(cm_env, run_cm, mirror):
    result = run_cm("--json", "download", "asvspoof2021_la", "--subset", "protocols", "--base-url", mirror.url)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert [f["name"] for f in payload["files"]] == ["LA-keys-full.tar.gz"] and payload["files"][0]["verified"]
    root = cm_env / "data" / "asvspoof2021_la"
    assert (root / "keys/LA/CM/trial_metadata.txt").is_file()
    assert (root / ".cm_unpacked/LA-keys-full.tar.gz.json").is_file()
    assert mirror.requests_for("ASVspoof2021_LA_eval.tar.gz") == []


def test_full_download_uses_zenodo_checksum_and_rerun_does_nothing(cm_env, run_cm, mirror, monkeypatch):
    monkeypatch.setenv("CM_MIRROR", mirror.url)
    first = run_cm("--json", "download", "asvspoof2021_la")
    assert first.exit_code == 0, first.output
    files = {f["name"]: f for f in json.loads(first.stdout)["files"]}
    assert (
        files["ASVspoof2021_LA_eval.tar.gz"]["md5"] == md5(AUDIO) and files["ASVspoof2021_LA_eval.tar.gz"]["verified"]
    )
    root = cm_env / "data" / "asvspoof2021_la"
    assert (root / "ASVspoof2021_LA_eval/flac/LA_E_9332881.flac").read_bytes() == b"f1"
    n_file_requests = len([p for p, _ in mirror.log if not p.startswith("/api/")])
    second = run_cm("download", "asvspoof2021_la")
    assert second.exit_code == 0 and "nothing to do" in second.stdout
    assert len([p for p, _ in mirror.log if not p.startswith("/api/")]) == n_file_requests
    manifest = run_cm("--json", "manifest", "--corpus", "asvspoof2021_la")  # reads the layout download made
    assert manifest.exit_code == 0, manifest.output
    assert json.loads(manifest.stdout)["n_utterances"] == 2


def test_corrupt_mirror_file_is_named_and_removed(cm_env, run_cm, mirror):
    mirror.faults["LA-keys-full.tar.gz"] = ["corrupt"]
    result = run_cm("download", "asvspoof2021_la", "--subset", "protocols", "--base-url", mirror.url)
    assert result.exit_code == 1
    assert "LA-keys-full.tar.gz: md5 mismatch" in result.stderr
    assert not list((cm_env / "data/asvspoof2021_la/downloads").glob("LA-keys-full*"))


def test_unknown_corpus_is_a_usage_error(cm_env, run_cm):
    result = run_cm("download", "asvspoof2017")
    assert result.exit_code == 2 and "unknown corpus" in result.stderr


def test_dry_run_prints_the_plan_without_network(cm_env, run_cm):
    result = run_cm("--json", "--dry-run", "download", "asvspoof5", "--subset", "dev", "--base-url", "http://m")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["options"]["subset"] == "dev"


def test_model_download_without_hub_module_is_a_clear_error(cm_env, run_cm, monkeypatch):
    monkeypatch.setitem(sys.modules, "cm_cli.models.hub", None)
    result = run_cm("download", "--model", "wav2vec2-xlsr")
    assert result.exit_code == 1 and "model downloads are not available" in result.stderr
