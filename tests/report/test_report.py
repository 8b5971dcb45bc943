"""cm_cli.report on a synthetic ERM-vs-DANN study: sections, figures, HTML embedding, LaTeX, skips, corpora."""

from __future__ import annotations

import base64
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cm_cli.core.errors import CmError
from cm_cli.report.collect import collect
from cm_cli.report.evaldata import curve, normalise_sweep
from cm_cli.report.render import build_report
from cm_cli.report.tables import Table, to_latex, to_markdown
from tests.report.synth import _scores, make_study, write_eval, write_run

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    return make_study(tmp_path_factory.mktemp("study"))


@pytest.fixture(scope="module")
def built(study, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    return build_report([study], out, latex=True, title="Toy study")


def test_collect_finds_every_kind(study):
    found = collect([study])
    assert {r.method for r in found.runs} == {"ERM", "DANN"}
    assert found.counts() == {"runs": 3, "evaluations": 3, "sweeps": 2, "loao": 1, "probes": 1, "cka": 1, "patching": 1}
    in_sweep = [e for e in found.evals if e.in_sweep]
    assert len(in_sweep) == 4 and all(e.corpus == "toy" for e in in_sweep)
    evals = {e.name: e for e in found.evals if not e.in_sweep and e.sweep is None}
    assert evals["dann_s0"].run.method == "DANN" and evals["erm_s1"].run.seed == 1
    assert found.corpora() == ["toy"]


def test_report_sections_and_numbers(built, study):
    text = built.markdown.read_text()
    for heading in (
        "## Runs",
        "## Results on toy",
        "### Overall metrics",
        "### Per codec and domain",
        "### Out-of-domain gap",
        "### DET, ROC and score distributions",
        "### Per attack",
        "### Degradation sweeps",
        "### Training curves",
        "## Analyses",
        "### Leave one attack out",
        "### Linear probes",
        "### CKA",
        "### Activation patching",
        "## Provenance",
    ):
        assert heading in text, heading
    # mean ± sd over the two ERM seeds, from the metrics.json overall EERs
    e0 = pd.read_json(study / "eval" / "erm_s0" / "metrics.json", typ="series")["overall"]["eer"]
    e1 = pd.read_json(study / "eval" / "erm_s1" / "metrics.json", typ="series")["overall"]["eer"]
    expected = f"{100 * np.mean([e0, e1]):.2f} ± {100 * np.std([e0, e1], ddof=1):.2f}"
    assert expected in text
    # the CI of ERM s0 is shown in percent
    assert re.search(r"\| ERM s0 \| erm_s0 \| [\d.]+ \| \[\d+\.\d\d, \d+\.\d\d\]", text)
    # per-attack table grouped by family, with the change from clean
    assert "| vc | A04 |" in text and "Δ (points)" in text
    # the planted effect: DANN's OOD gap is smaller, so its gap reduction vs ERM is positive
    row = next(line for line in text.splitlines() if line.startswith("| DANN s0 | scores"))
    assert float(row.rstrip(" |").split("|")[-1]) > 0
    assert "commands that produced" in text.lower() and "cm train --preset toy_lcnn_dann" in text


def test_figures_exist_and_html_embeds_them(built):
    names = {p.name for p in built.figures}
    for expected in (
        "det-toy.png",
        "roc-toy.png",
        "scores-toy.png",
        "eer-by-codec-toy.png",
        "mindcf-by-codec-toy.png",
        "sweep-toy.png",
        "training-toy.png",
        "attack-condition-erm-toy.png",
        "eer-by-attack-toy.png",
    ):
        assert expected in names
    assert any(n.startswith("loao-gaps") for n in names) and any(n.startswith("cka-diagonal") for n in names)
    assert any(n.startswith("probe-codec") for n in names) and any(n.startswith("patching") for n in names)
    for path in built.figures:
        assert path.is_file() and path.read_bytes().startswith(PNG_MAGIC)
    html = built.html.read_text()
    assert "<title>Toy study</title>" in html and "figures/" not in re.sub(r"<figcaption>.*?</figcaption>", "", html)
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == len(built.figures)
    import io

    from PIL import Image

    for data in images:
        raw = base64.b64decode(data, validate=True)
        assert raw.startswith(PNG_MAGIC)
        with Image.open(io.BytesIO(raw)) as image:
            image.verify()
    md_links = re.findall(r"!\[[^\]]*\]\((figures/[^)]+)\)", built.markdown.read_text())
    assert len(md_links) == len(built.figures)
    assert all((built.out / link).is_file() for link in md_links)


def test_latex_tables_use_booktabs(built):
    assert built.tables and all(p.suffix == ".tex" for p in built.tables)
    overall = next(p for p in built.tables if p.stem.startswith("overall-toy"))
    tex = overall.read_text()
    assert "\\toprule" in tex and "\\midrule" in tex and "\\bottomrule" in tex and "EER (\\%)" in tex
    assert "\\input{tables/" in (built.out / "tables" / "all_tables.tex").read_text()


def test_record_is_a_report(built):
    import json

    record = json.loads((built.out / "cm.json").read_text())
    assert record["kind"] == "report" and record["status"] == "complete"


def test_missing_artifacts_are_named_with_their_command(tmp_path):
    study = make_study(tmp_path / "s", analyses=False, seeds=(0,))
    shutil.rmtree(study / "sweeps")
    for history in (study / "runs").glob("*/history.parquet"):
        history.unlink()
    result = build_report([study], tmp_path / "out")
    text = result.markdown.read_text()
    assert "No probes found: run `cm probe EMB --manifest M --target codec --out DIR`" in text
    assert "No LOAO results found: run `cm loao EMBEDDINGS --manifest M --out DIR`" in text
    assert "No CKA results found: run `cm cka EMB_A EMB_B --out DIR`" in text
    assert "No patching results found: run `cm patch --base RUN --donor RUN --manifest M --out DIR`" in text
    assert "No degradation sweeps for toy: run `cm eval" in text
    assert "No history.parquet for toy" in text
    assert "No seed replicates" in text
    assert any("No probes found" in s for s in result.skipped)
    assert 'class="note"' in result.html.read_text()


def test_empty_directory_is_an_error_listing_what_was_looked_for(tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "notes.txt").write_text("nothing here")
    with pytest.raises(CmError) as info:
        build_report([tmp_path / "empty"], tmp_path / "out")
    for needle in (
        "metrics.json",
        "scores.parquet",
        "history.parquet",
        "probes.parquet",
        "cka.parquet",
        "patching.parquet",
        "loao.parquet",
        "sweep.parquet",
    ):
        assert needle in info.value.message
    assert not (tmp_path / "out" / "report.html").exists()


def test_missing_directory_is_an_error(tmp_path):
    with pytest.raises(CmError, match="no such directory"):
        build_report([tmp_path / "nope"], tmp_path / "out")


def test_two_corpora_are_reported_separately(tmp_path):
    a = make_study(tmp_path / "a", analyses=False, seeds=(0,))
    b = tmp_path / "b"
    run = write_run(b / "runs" / "erm_s0", method="erm", seed=0, corpus="asvspoof2019_la")
    write_eval(b / "eval" / "erm_s0", _scores("asvspoof2019_la", "erm", 3), run)
    result = build_report([a, b], tmp_path / "out")
    assert result.corpora == ["toy", "asvspoof2019_la"]
    text = result.markdown.read_text()
    assert "## Results on toy" in text and "## Results on asvspoof2019_la" in text
    toy_part = text.split("## Results on toy")[1].split("## Results on asvspoof2019_la")[0]
    other_part = text.split("## Results on asvspoof2019_la")[1].split("## Analyses")[0]
    # the 2019 ERM run appears only in its own section; the toy seeds table does not pool it
    assert "erm_s0 |" in other_part and "DANN" not in other_part
    assert "DANN" in toy_part
    assert "No seed replicates" in toy_part
    assert {p.name for p in result.figures} >= {"det-toy.png", "det-asvspoof2019-la.png"}
    assert "2 corpora" in text


def test_report_directory_is_not_collected_again(study, tmp_path):
    out = study / "reports" / "r1"
    try:
        first = build_report([study], out)
        second = build_report([study], out)
        assert first.counts == second.counts
    finally:
        shutil.rmtree(study / "reports")


def test_refuses_to_overwrite_another_artifact(study, tmp_path):
    with pytest.raises(CmError, match="not a report"):
        build_report([study / "eval"], study / "runs" / "erm_s0")


def test_det_curve_matches_official_sweep(study):
    found = collect([study / "eval" / "erm_s0"])
    c = curve(found.evals[0])
    scores = pd.read_parquet(study / "eval" / "erm_s0" / "scores.parquet")
    bona = scores.loc[scores["label"] == "bonafide", "score"].to_numpy(float)
    spoof = scores.loc[scores["label"] == "spoof", "score"].to_numpy(float)
    all_scores = np.concatenate([bona, spoof])
    labels = np.concatenate([np.ones(bona.size), np.zeros(spoof.size)])
    order = np.argsort(all_scores, kind="mergesort")
    labels = labels[order]
    frr = np.concatenate([[0], np.cumsum(labels) / bona.size])
    far = np.concatenate([[1], (spoof.size - (np.arange(1, labels.size + 1) - np.cumsum(labels))) / spoof.size])
    np.testing.assert_allclose(c.frr, frr)
    np.testing.assert_allclose(c.far, far)
    i = np.argmin(np.abs(frr - far))
    metrics = pd.read_json(study / "eval" / "erm_s0" / "metrics.json", typ="series")["overall"]
    assert c.eer == pytest.approx((frr[i] + far[i]) / 2) == pytest.approx(metrics["eer"], abs=1e-12)


def test_normalise_sweep_shapes():
    wide = pd.DataFrame(
        {
            "condition": ["clean", "mp3:kbps=16", "noise:snr=5:type=pink"],
            "eer": [0.1, 0.2, 0.3],
            "min_dcf": [0.2, 0.4, 0.6],
            "eer_threshold": [0, 0, 0],
            "eer_A01": [0.1, 0.3, 0.5],
        }
    )
    overall, attacks = normalise_sweep(wide)
    assert overall["parameter"].tolist()[1:] == ["kbps", "snr"] and np.isnan(overall["severity"][0])
    assert overall["severity"].tolist()[1:] == [16.0, 5.0]
    assert attacks["attack"].unique().tolist() == ["A01"]
    long = pd.DataFrame(
        {
            "condition": ["c:ms=500", "c:ms=500", "c:ms=1000"],
            "attack": [None, "A01", None],
            "chunk_ms": [500, 500, 1000],
            "eer": [0.2, 0.4, 0.1],
        }
    )
    overall, attacks = normalise_sweep(long)
    assert overall["parameter"].tolist() == ["chunk_ms", "chunk_ms"] and attacks["attack"].tolist() == ["A01"]
    with pytest.raises(CmError, match="condition"):
        normalise_sweep(pd.DataFrame({"eer": [0.1]}))


def test_table_renderers_escape():
    table = Table("t", "Rates in % & more", pd.DataFrame({"a_b": ["x|y"], "EER (%)": ["1.00"]}))
    md = to_markdown(table)
    assert "x\\|y" in md and "---:" in md
    tex = to_latex(table)
    assert "a\\_b" in tex and "Rates in \\% \\& more" in tex and "\\label{tab:t}" in tex


def test_every_analysis_is_labelled_with_what_it_measures(built):
    text = built.markdown.read_text()
    analyses = text.split("## Analyses")[1].split("## Provenance")[0]
    assert "**What this measures** (LOAO on frozen embeddings): linear separability of a held-out attack" in analyses
    assert "the encoder that made the embeddings saw every attack" in analyses
    assert "**What this measures** (Control task)" in analyses and "unit not recorded" in analyses
    assert "**What this measures** (CKA estimator `linear`)" in analyses
    assert "**What this measures** (Patching alignment): alignment not recorded" in analyses
    assert "<strong>What this measures</strong>" in built.html.read_text()


def test_label_texts():
    from cm_cli.report.labels import cka_estimator_text, patching_alignment_text

    biased = cka_estimator_text("biased-minibatch64")
    assert "WARNING" in biased and "inflated" in biased
    assert "unbiased HSIC" in cka_estimator_text("debiased-minibatch64") and "64 rows" in cka_estimator_text(
        "debiased-minibatch64"
    )
    assert "all rows at once" in cka_estimator_text("biased")
    assert patching_alignment_text({"aligned": True, "alignment": "same pretrained backbone"}).startswith(
        "base and donor share their initialisation (same pretrained backbone)"
    )
    unaligned = patching_alignment_text(
        {"alignment": {"aligned": False, "reason": "independent init seeds 0 and 1"}, "allow_unaligned": True}
    )
    assert unaligned.startswith("UNALIGNED") and "--allow-unaligned" in unaligned and "seeds 0 and 1" in unaligned


def test_seed_groups_mean_sd_and_paired_tests_on_the_demo_layout(tmp_path):
    """Issue 17: groups = the <method> directories; mean ± sd of EER, minDCF and the seen/unseen gaps;
    a paired test for each pair with p and effect size, a figure, and a plain sentence."""
    from tests.report.synth import write_demo_layout

    study = write_demo_layout(tmp_path / "demo")
    result = build_report([study], tmp_path / "out")
    text = result.markdown.read_text()
    seeds = text.split("Mean ± sd over runs on toy")[1].split("###")[0]
    for label in ("| erm |", "| erm_aug |", "| dann |"):
        assert label in seeds
    assert "Seen-codec gap (points)" in seeds and "Unseen-codec gap (points)" in seeds
    erm_row = next(line for line in seeds.splitlines() if line.startswith("| erm |"))
    assert erm_row.count("±") >= 5
    tests = text.split("### Seeds and paired tests")[1].split("### Per codec")[0]
    rows = [line for line in tests.split("Paired tests on toy of the")[0].splitlines() if line.endswith(" 3/3 |")]
    assert len(rows) == 3 and rows[0].startswith("| erm |")  # the baseline is A
    assert "nan" not in tests
    assert "What the evidence supports, pair by pair:" in tests and "Mean EER over seeds: dann" in tests
    sentences = [line for line in tests.splitlines() if line.startswith("- ")]
    assert any(
        "dann − erm" in s and "supports a real difference, dann has a lower EER than erm" in s for s in sentences
    )
    assert any("dann − erm_aug" in s and "does not support a difference" in s for s in sentences), sentences
    assert "seeds-toy.png" in {p.name for p in result.figures}
    # the gap is compared on the codecs no group trained on (C01 is seen by erm_aug and dann)
    assert "Paired tests on toy of the unseen-codec gap" in tests and "(alaw, mp3, opus)" in tests
    assert len(sentences) == 6 and sum("points of unseen-codec gap" in s for s in sentences) == 3
    # one Holm family over both tables, labelled as such in both captions and the summary paragraph
    family = "one Holm family of 6 seed-level comparisons on toy (3 EER, 3 unseen-codec gap; every pair of 3 systems)"
    assert tests.count(family) == 4


def test_report_reads_contract4_metrics_and_contract5_codecs(tmp_path):
    """Issue 12 item 4: numbers come from metrics.json (by.attack, ood_gap with its seen/unseen split, ci
    with its unit, min t-DCF first on 2019 LA, SASV a-DCF/t-EER, top-level corpus for cross-corpus), and
    scores with codec = Cxx, codec_q and bitrate_kbps columns are read."""
    import json

    run = write_run(tmp_path / "runs" / "erm_s0", method="erm", seed=0, corpus="toy")
    frame = _scores("toy", "erm", 0)
    codec = frame["codec"].map({None: None, "mp3": "C05", "opus": "C01", "alaw": "C08"})
    frame = frame.assign(
        codec=codec,
        codec_q=np.where(codec.notna(), "3", None),
        bitrate_kbps=np.where(codec.notna(), 16.0, np.nan),
        domain=codec.fillna("clean"),
    )
    in_corpus = tmp_path / "eval" / "toy"
    write_eval(in_corpus, frame, run)
    metrics = json.loads((in_corpus / "metrics.json").read_text())
    metrics["by"]["attack"]["A01"]["eer"] = 0.4321  # planted: differs from what the scores give
    metrics["ci"] = {"eer": [0.1, 0.2], "cluster_by": "speaker", "unit": "speaker", "n_clusters": 12}
    metrics["ood_gap"] = {
        "column": "domain",
        "in_domain": ["clean"],
        "eer_in": 0.1,
        "eer_out": 0.2234,
        "gap_abs_points": 12.34,
        "gap_rel": 1.234,
        "seen_domains": ["C01", "clean"],
        "split": {
            "seen": {"eer": 0.15, "gap_abs_points": 5.0, "gap_rel": 0.5},
            "unseen": {"eer": 0.2567, "gap_abs_points": 15.67, "gap_rel": 1.567},
        },
    }
    metrics["corpus"] = ["toy"]
    (in_corpus / "metrics.json").write_text(json.dumps(metrics))
    cross = tmp_path / "eval" / "la"
    write_eval(cross, _scores("asvspoof2019_la", "erm", 1), run)
    metrics = json.loads((cross / "metrics.json").read_text())
    metrics["overall"].update(min_tdcf=0.1234, min_tdcf_legacy=0.2345)
    metrics["tdcf"] = {"formulation": "revised-2021", "params": {}}
    metrics["sasv"] = {"a_dcf": 0.0567, "t_eer": 0.0432, "params": {}}
    metrics["corpus"] = "asvspoof2019_la"
    (cross / "metrics.json").write_text(json.dumps(metrics))

    result = build_report([tmp_path], tmp_path / "out")
    text = result.markdown.read_text()
    toy = text.split("## Results on toy")[1].split("## Results on")[0]
    assert "| 43.21 |" in toy.split("### Per attack")[1]  # by.attack from metrics.json
    ood = toy.split("### Out-of-domain gap")[1].split("###")[0]
    assert "12.34" in ood and "15.67" in ood and "25.67" in ood and "C01, clean" in ood
    assert "speaker (speaker)" in toy.split("### Overall metrics")[1].split("###")[0]
    assert "C05" in toy.split("### Per codec and domain")[1].split("###")[0]
    la = text.split("## Results on asvspoof2019_la")[1].split("## Analyses")[0]
    header = next(line for line in la.splitlines() if line.startswith("| System |"))
    assert header.index("min t-DCF") < header.index("EER (%)") and "a-DCF" in header and "t-EER (%)" in header
    assert "0.1234" in la and "0.2345" in la and "0.0567" in la and "revised-2021" in la
    runs = text.split("## Runs")[1].split("## Results on")[0]
    assert "cross-corpus" in runs and "in-corpus" in runs and "asvspoof2019_la" in runs


def test_disk_full_leaves_no_half_written_report(study, tmp_path, monkeypatch):
    """A write error on report.html is one CmError and leaves neither report.md nor report.html behind."""
    import errno

    real = Path.write_text

    def full_disk(self, text, *args, **kwargs):
        if ".report.html" in self.name:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, text, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", full_disk)
    out = tmp_path / "report"
    with pytest.raises(CmError, match="report.html"):
        build_report([study], out, title="Toy study")
    assert not (out / "report.md").exists() and not (out / "report.html").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".report")]


def test_a_kind_declared_in_one_place_is_collected_and_rendered(study, tmp_path):
    """A dummy analysis kind: one register_kind call, no report code; the report finds, counts and tables it."""
    from cm_cli.analysis._output import write_outputs
    from cm_cli.core.kinds import register_kind, unregister_kind
    from cm_cli.report.collect import looked_for

    register_kind(
        "dummy_profile",
        title="Dummy profile",
        command="`cm dummy EMB --out DIR`",
        marker="dummy_profile.parquet",
        tables=("dummy_profile",),
        order=45,
    )
    try:
        planted = pd.DataFrame({"layer": ["layer_00", "layer_01"], "loudness": [0.125, 0.875]})
        write_outputs(
            tmp_path / "prof",
            "dummy_profile",
            {"target": "loudness"},
            tables={"dummy_profile.parquet": planted},
            summary={"measures": "how loud each layer is"},
            summary_name="dummy_profile.json",
        )
        assert "dummy_profile.parquet" in looked_for()
        found = collect([tmp_path / "prof"])
        assert [a.name for a in found.analyses["dummy_profile"]] == ["prof"]
        assert found.counts()["dummy_profile"] == 1
        result = build_report([tmp_path / "prof"], tmp_path / "out")
        text = result.markdown.read_text()
        section = text[text.index("### Dummy profile") : text.index("## Provenance")]
        assert "**What this measures** (Dummy profile): how loud each layer is." in section
        assert "| layer_01 | 0.875 |" in section and "| layer_00 | 0.125 |" in section
        assert "dummy_profile" in result.counts
        # its section sits between patching (order 40) and the optional retraining section, its hint when missing
        without = build_report([study], tmp_path / "out2").markdown.read_text()
        assert without.index("### Activation patching") < without.index("### Dummy profile")
        assert "No Dummy profile results found: run `cm dummy EMB --out DIR`" in without
    finally:
        unregister_kind("dummy_profile")
    with pytest.raises(ValueError, match="unknown artifact kind"):
        write_outputs(tmp_path / "prof2", "dummy_profile", {}, tables={}, summary={}, summary_name="x.json")
