"""The evaluation settings shared by ``cm eval --scores`` and ``cm eval --run``.

One frozen record holds every option that changes the metrics (costs, score kind,
calibration, intervals, breakdowns, OOD gap), so both modes evaluate a score table
the same way and record the same ``params``/``options``. Extra blocks (t-DCF, SASV)
plug in as ``blocks``: callables that get the scored table and the metrics document
and return ``{name: block}`` (see ``writer.add_block``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from cm_cli.core.errors import CmError
from cm_cli.evaluation.readers import ScoreColumns

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["EvalSettings", "BlockMaker", "seen_domains_of_run"]

# (scored table, metrics document) -> {block name: block}; applied with writer.add_block
BlockMaker = Callable[["pd.DataFrame", dict], Mapping[str, Any]]


def seen_domains_of_run(run: str | Path, *, required: bool = True) -> list[str] | None:
    """The domains a `cm train` run trained on: ``seen_domains`` and ``augment_conditions`` of
    its ``config.json`` (None when the run records neither, or has no config and not ``required``)."""
    from cm_cli.core.artifacts import read_json

    run = Path(run)
    candidates = (
        [run / "config.json"] if run.is_dir() else [run.parent / "config.json", run.parent.parent / "config.json"]
    )
    config_path = next((p for p in candidates if p.is_file()), None)
    if config_path is None:
        if required:
            raise CmError(f"{run}: no config.json of a `cm train` run", "give the run directory")
        return None
    config = read_json(config_path)
    if "seen_domains" not in config and "augment_conditions" not in config:
        if required:
            raise CmError(
                f"{config_path}: records no seen_domains or augment_conditions",
                "the run predates them; give the seen domains",
                option="seen_domain",
            )
        return None
    values = [*(config.get("seen_domains") or []), *(config.get("augment_conditions") or [])]
    return sorted({str(v) for v in values})


def _tuple(values: Sequence[str] | None) -> tuple[str, ...]:
    return tuple(dict.fromkeys(str(v) for v in values or ()))


@dataclass(frozen=True)
class EvalSettings:
    """Every option of ``cm eval`` that shapes metrics.json (defaults: ASVspoof 5 Track 1)."""

    by: tuple[str, ...] = ()
    in_domain: tuple[str, ...] = ()
    domain_col: str | None = None
    seen_domains: tuple[str, ...] | None = None  # None: no seen/unseen split
    compare: Path | None = None
    bootstrap: int = 0
    cluster_by: str = "auto"
    level: float = 0.95
    seed: int = 0
    calibrate_on: Path | None = None
    score_kind: str = "raw"
    p_spoof: float = 0.05
    c_miss: float = 1.0
    c_fa: float = 10.0
    min_trials: int = 20
    drop_invalid: bool = False
    dedupe: bool = False
    columns: ScoreColumns = ScoreColumns()  # how to read --calibrate-on dev scores
    blocks: tuple[BlockMaker, ...] = field(default=(), compare=False)
    asv_scores: Path | None = None  # the ASV system of the t-DCF block (recorded; the block is in ``blocks``)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by", _tuple(self.by))
        object.__setattr__(self, "in_domain", _tuple(self.in_domain))
        if self.seen_domains is not None:
            object.__setattr__(self, "seen_domains", tuple(sorted(set(map(str, self.seen_domains)))))
        for name in ("compare", "calibrate_on"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, Path(value))

    def with_seen(self, seen: Sequence[str] | None) -> "EvalSettings":
        """These settings with the training domains, unless they were given explicitly."""
        return self if self.seen_domains is not None or seen is None else replace(self, seen_domains=tuple(seen))

    def options(self) -> dict:
        """JSON-ready record of the settings (provenance and the skip-if-done key)."""
        return {
            "by": list(self.by),
            "in_domain": list(self.in_domain),
            "domain_col": self.domain_col,
            "seen_domains": list(self.seen_domains) if self.seen_domains is not None else None,
            "compare": str(self.compare) if self.compare else None,
            "bootstrap": self.bootstrap,
            "cluster_by": self.cluster_by,
            "level": self.level,
            "seed": self.seed,
            "calibrate_on": str(self.calibrate_on) if self.calibrate_on else None,
            "score_kind": self.score_kind,
            "p_spoof": self.p_spoof,
            "c_miss": self.c_miss,
            "c_fa": self.c_fa,
            "min_trials": self.min_trials,
            "drop_invalid": self.drop_invalid,
            "dedupe": self.dedupe,
            "asv_scores": str(self.asv_scores) if self.asv_scores else None,
        }

    def inputs(self) -> list[Path]:
        return [p for p in (self.compare, self.calibrate_on, self.asv_scores) if p is not None and Path(p).is_file()]

    def _calibration(self):
        from cm_cli.evaluation.readers import load_scores
        from cm_cli.metrics.calibration import fit_calibration
        from cm_cli.metrics.kinds import to_llr
        from cm_cli.metrics.report import finite_scores

        dev = load_scores(self.calibrate_on, self.columns, dedupe=self.dedupe)
        dev, _ = finite_scores(dev, drop_invalid=self.drop_invalid, source=str(self.calibrate_on))
        return fit_calibration(
            to_llr(dev["score"].to_numpy(), self.score_kind), (dev["label"] == "bonafide").to_numpy()
        )

    def evaluate(self, df: "pd.DataFrame", *, source: str = "scores", run: str | Path | None = None) -> dict:
        """The metrics.json document of a score table under these settings."""
        from cm_cli.evaluation.readers import drop_duplicate_trials
        from cm_cli.evaluation.writer import add_block, corpus_values
        from cm_cli.metrics.dcf import CostParams
        from cm_cli.metrics.report import evaluate_scores

        df = drop_duplicate_trials(df, dedupe=self.dedupe, source=source)
        extra: dict[str, Any] = {}
        if self.compare is not None:
            from cm_cli.core.artifacts import read_json

            extra = {"compare": read_json(self.compare), "compare_source": str(self.compare)}
        if self.calibrate_on is not None:
            extra["calibration"] = self._calibration()
        result = evaluate_scores(
            df,
            by=self.by,
            in_domain=self.in_domain,
            domain_col=self.domain_col,
            seen_domains=self.seen_domains if self.in_domain else None,
            params=CostParams(self.p_spoof, self.c_miss, self.c_fa),
            score_kind=self.score_kind,
            bootstrap=self.bootstrap,
            cluster_by=self.cluster_by,
            seed=self.seed,
            level=self.level,
            drop_invalid=self.drop_invalid,
            min_trials=self.min_trials,
            source=source,
            **extra,
        )
        result["corpus"] = corpus_values(df)
        if df.attrs.get("subset"):  # an ASVspoof 2021 key of several phases: the eval phase was kept
            result["subset"] = df.attrs["subset"]
        result["run"] = str(run) if run is not None else None
        for make in self.blocks:
            for name, block in make(df, result).items():
                add_block(result, name, block)
        return result
