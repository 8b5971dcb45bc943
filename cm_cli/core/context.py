"""The one ``Context`` every command receives: paths, device, seed, workers, output mode.

Precedence (DESIGN.md): command-line option > environment > ``.env`` in the
working directory > ``cm.toml`` > default. ``RUNS_DIR`` and ``HF_HOME`` are read
as fallbacks so existing cluster set-ups keep working; ``ASVSPOOF5_ROOT`` points
at the ASVspoof 5 corpus directory itself.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

from cm_cli.core.errors import CmError, UsageError

__all__ = ["Context", "resolve_context", "load_dotenv", "load_cm_toml", "validate_device", "CONTEXT_ENV"]

# context field -> primary environment variable
CONTEXT_ENV = {
    "data_root": "CM_DATA_ROOT",
    "runs_dir": "CM_RUNS_DIR",
    "cache_dir": "CM_CACHE_DIR",
    "device": "CM_DEVICE",
    "seed": "CM_SEED",
    "workers": "CM_WORKERS",
}
# legacy variables read when the primary one is absent
FALLBACK_ENV = {"runs_dir": "RUNS_DIR"}
PASSTHROUGH_ENV = ("HF_HOME", "ASVSPOOF5_ROOT", "CM_MIRROR", "CM_FFMPEG")
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


@dataclass
class Context:
    data_root: Path = Path("data")
    runs_dir: Path = Path("runs")
    cache_dir: Path = field(default_factory=lambda: Path.home() / ".cache" / "cm")
    device: str = "auto"
    seed: int = 0
    workers: int = field(default_factory=lambda: max(1, min(8, os.cpu_count() or 1)))
    json: bool = False
    verbose: int = 0
    quiet: bool = False
    dry_run: bool = False
    debug: bool = False
    config: dict = field(default_factory=dict)  # cm.toml contents (command tables included)
    config_path: Path | None = None  # the cm.toml read (None when there was none)
    env: dict = field(default_factory=dict)  # passthrough variables (HF_HOME, ASVSPOOF5_ROOT, …)
    sources: dict = field(default_factory=dict)  # field -> where its value came from

    def corpus_root(self, corpus: str) -> Path:
        """Directory of a corpus under the data root (ASVSPOOF5_ROOT overrides for asvspoof5)."""
        if corpus == "asvspoof5" and self.env.get("ASVSPOOF5_ROOT"):
            return Path(self.env["ASVSPOOF5_ROOT"])
        return self.data_root / corpus

    def default_manifest(self, corpus: str) -> Path:
        return self.runs_dir / "manifests" / corpus / "manifest.parquet"

    def data_workers(self, option: int | None = None, *, unset: int | None = None) -> int:
        """Worker processes for a command that loads data or scores audio, decided here for every command.

        The command's own ``--workers`` when given; else the global one (``--workers``,
        ``CM_WORKERS``, ``.env``, ``cm.toml``) when any of those set it; else ``unset``, the
        command's default when nobody asked (``0`` = in process, for training and scoring,
        where starting processes costs more than it saves on small sets), or, when ``unset``
        is None, the global default (``min(8, CPUs)``, for bulk decoding and embedding).
        """
        if option is not None:
            return int(option)
        if unset is None or self.sources.get("workers", "default") != "default":
            return int(self.workers)
        return int(unset)

    def command_defaults(self, command: str) -> dict:
        table = self.config.get(command, {})
        return dict(table) if isinstance(table, dict) else {}

    def torch_device(self):
        """The ``torch.device`` to run on; ``auto`` picks CUDA, then MPS, then CPU."""
        import torch

        if self.device == "auto":
            if torch.cuda.is_available():
                return torch.device("cuda")
            if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
                return torch.device("mps")
            return torch.device("cpu")
        check_device_available(self.device)
        return torch.device(self.device)

    def summary(self) -> dict:
        data = asdict(self)
        data.pop("config")
        data.pop("config_path")
        return {k: str(v) if isinstance(v, Path) else v for k, v in data.items()}


def validate_device(value: str, source: str) -> str:
    value = value.strip().lower()
    if not _DEVICE.match(value):
        raise UsageError(f"{source}: unknown device {value!r}", "use auto, cpu, cuda, cuda:N or mps")
    return value


def check_device_available(device: str) -> None:
    """Fail with one line when the requested accelerator is not there (imports torch)."""
    if device in ("auto", "cpu"):
        return
    import torch

    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise CmError(
                f"device {device!r} requested but no CUDA GPU is available",
                "use device cpu (or auto), or run on a GPU node",
                option="device",
            )
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise CmError(f"device {device!r} requested but only {torch.cuda.device_count()} GPU(s) are visible")
    elif device == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise CmError("device 'mps' requested but MPS is not available", "use device cpu", option="device")


def load_dotenv(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines (optional ``export``, quotes, ``#`` comments)."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for number, raw in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].strip()
        if "=" not in line:
            raise CmError(f"{path}:{number}: expected KEY=VALUE, got {raw.strip()!r}")
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        values[key.strip()] = value
    return values


def load_cm_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        import tomllib
    except ModuleNotFoundError:  # Python < 3.11
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise CmError(f"{path}: malformed TOML ({exc})", "fix the file or remove it") from None
    context_table = data.get("cm", {})
    if not isinstance(context_table, dict):
        raise CmError(f"{path}: [cm] must be a table")
    return data


def _coerce_int(value: Any, name: str, source: str, minimum: int) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        raise UsageError(f"{source}: {name} must be an integer, got {value!r}") from None
    if number < minimum:
        raise UsageError(f"{source}: {name} must be at least {minimum}, got {number}")
    return number


def resolve_context(
    options: Mapping[str, Any],
    *,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Context:
    """Build the Context from explicit options (None = not given), env, .env, cm.toml, defaults."""
    environ = dict(os.environ if environ is None else environ)
    cwd = Path.cwd() if cwd is None else cwd
    dotenv = load_dotenv(cwd / ".env")
    config_path = Path(options.get("config") or environ.get("CM_CONFIG") or cwd / "cm.toml")
    config = load_cm_toml(config_path)
    toml_context = config.get("cm", {})
    if options.get("config") and not config_path.is_file():
        raise CmError(f"{config_path}: no such config file")

    ctx = Context()
    sources: dict[str, str] = {}
    for name, var in CONTEXT_ENV.items():
        value, source = None, "default"
        if options.get(name) is not None:
            value, source = options[name], f"--{name.replace('_', '-')}"
        elif environ.get(var):
            value, source = environ[var], var
        elif name in FALLBACK_ENV and environ.get(FALLBACK_ENV[name]):
            value, source = environ[FALLBACK_ENV[name]], FALLBACK_ENV[name]
        elif dotenv.get(var):
            value, source = dotenv[var], f".env {var}"
        elif name in FALLBACK_ENV and dotenv.get(FALLBACK_ENV[name]):
            value, source = dotenv[FALLBACK_ENV[name]], f".env {FALLBACK_ENV[name]}"
        elif name in toml_context:
            value, source = toml_context[name], f"{config_path.name} [cm].{name}"
        sources[name] = source
        if value is None:
            continue
        if name in ("data_root", "runs_dir", "cache_dir"):
            path = Path(os.path.expandvars(str(value))).expanduser()
            setattr(ctx, name, path if path.is_absolute() else (cwd / path))
        elif name == "device":
            ctx.device = validate_device(str(value), source)
        elif name == "seed":
            ctx.seed = _coerce_int(value, "seed", source, 0)
        elif name == "workers":
            ctx.workers = _coerce_int(value, "workers", source, 1)
    for name in ("data_root", "runs_dir"):
        if sources[name] == "default":
            setattr(ctx, name, cwd / getattr(ctx, name))
    for var in PASSTHROUGH_ENV:
        value = environ.get(var) or dotenv.get(var)
        if value:
            ctx.env[var] = value
            if var == "HF_HOME" and "HF_HOME" not in os.environ:
                os.environ["HF_HOME"] = value  # huggingface_hub reads it from the process environment
    ctx.json = bool(options.get("json"))
    ctx.verbose = int(options.get("verbose") or 0)
    ctx.quiet = bool(options.get("quiet"))
    ctx.dry_run = bool(options.get("dry_run"))
    ctx.debug = bool(options.get("debug"))
    ctx.config = config
    ctx.config_path = config_path if config_path.is_file() else None
    ctx.sources = sources
    return ctx
