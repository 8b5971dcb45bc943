"""Hub-hosted detectors in transformers format (``AutoModelForAudioClassification``) as cm models.

Many published detectors are audio-classification checkpoints on the Hugging Face Hub
whose labels are free text (``bonafide``/``spoof``, ``real``/``fake``, ``human``/``ai`` ...).
cm never guesses which label is bona fide from words like "real": only a label that
``core.labels`` reads as bona fide (``bonafide``, ``bona-fide``) is taken as such; any
other set of labels needs ``--bonafide-label``. The score is the log-odds of the bona fide
class, ``logit[bona] - logsumexp(other logits)`` (for two classes: the logit difference),
so higher = more bona fide as everywhere in cm. The model runs on whole utterances (length
policy ``full``), its feature extractor's waveform normalisation applied per utterance.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from cm_cli.core.errors import CmError
from cm_cli.models.registry import Backbone, LayerStates

__all__ = ["HF_CLASSIFIER", "is_audio_classifier", "read_labels", "check_bonafide_label", "build_classifier"]

HF_CLASSIFIER = Backbone(
    "hf_classifier",
    "hf_classifier",
    "cm_cli.models.hf_classifier",
    "transformers audio-classification checkpoint (scored as the log-odds of its bona fide label)",
    length_policy="full",
    default_trainable="frozen",
    trainable_specs="frozen | all",
    weights="hub",
    frame_layers=True,
)
_ARCH_SUFFIXES = ("ForAudioClassification", "ForSequenceClassification")
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def is_audio_classifier(config: dict) -> bool:
    """Whether a transformers ``config.json`` describes an audio-classification model with labels."""
    architectures = config.get("architectures") or []
    return isinstance(config.get("id2label"), dict) and any(str(a).endswith(_ARCH_SUFFIXES) for a in architectures)


def read_labels(folder: str | os.PathLike) -> list[str]:
    """The class labels of a transformers classifier folder, in index order."""
    path = Path(folder) / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CmError(f"cannot read {path}: {exc}", "give a transformers model folder (save_pretrained)") from None
    if not is_audio_classifier(config):
        raise CmError(
            f"{folder} is not a transformers audio-classification model (no *ForAudioClassification "
            "architecture with id2label)",
            "give an AutoModelForAudioClassification checkpoint",
        )
    id2label = config["id2label"]
    return [str(id2label[k]) for k in sorted(id2label, key=lambda k: int(k))]


def check_bonafide_label(labels: list[str], bonafide_label: str | None, *, source: str) -> str:
    """The bona fide label: the one given (must be a label), or the one label cm reads as bona fide."""
    from cm_cli.core.labels import BONAFIDE, label_class

    shown = ", ".join(labels)
    if bonafide_label is not None:
        if str(bonafide_label) not in labels:
            raise CmError(
                f"bona fide label {bonafide_label!r} is not a label of {source} (labels: {shown})",
                "give one of its labels",
                option="bonafide_label",
            )
        return str(bonafide_label)
    named = [label for label in labels if label_class(label) == BONAFIDE]
    if len(named) != 1:
        raise CmError(
            f"the labels of {source} ({shown}) do not name one bona fide class",
            "say which label is bona fide; cm reads only bonafide / bona-fide as bona fide by itself",
            option="bonafide_label",
        )
    return named[0]


def _receptive_field(config) -> int:
    kernels, strides = getattr(config, "conv_kernel", None), getattr(config, "conv_stride", None)
    if not kernels or not strides:
        return 400
    field, jump = 1, 1
    for kernel, stride in zip(kernels, strides):
        field += (int(kernel) - 1) * jump
        jump *= int(stride)
    return int(field)


def _net_class():
    """The backbone net class (defined on first use, so importing this module does not import torch)."""
    import torch
    from torch import nn

    class HFClassifierNet(nn.Module):
        """A transformers classifier behind cm's backbone protocol (``forward_layers`` and friends)."""

        def __init__(self, model, bona_index: int, normalize: bool, use_mask: bool):
            super().__init__()
            self.model = model
            self.bona_index = int(bona_index)
            self.normalize = bool(normalize)
            self.use_mask = bool(use_mask)
            self.receptive_field = _receptive_field(model.config)
            self.n_layers = int(getattr(model.config, "num_hidden_layers", 0)) + 1

        def layer_modules(self) -> list:
            encoder = getattr(getattr(self.model, self.model.base_model_prefix, self.model), "encoder", None)
            return list(getattr(encoder, "layers", []) or [])

        def set_trainable(self, spec: str) -> None:
            if spec not in ("frozen", "all"):
                raise CmError(f"trainable {spec!r} is not supported for a transformers classifier", "use frozen or all")
            for p in self.model.parameters():
                p.requires_grad_(spec == "all")

        def forward_layers(self, wave, lengths=None) -> LayerStates:
            n = wave.shape[-1]
            lengths = torch.full((wave.shape[0],), n, device=wave.device) if lengths is None else lengths
            mask = torch.arange(n, device=wave.device)[None, :] < lengths[:, None]
            x = wave.float()
            if self.normalize:  # zero mean, unit variance over each utterance's real samples
                count = lengths.clamp(min=1).to(x.dtype)[:, None]
                mean = (x * mask).sum(-1, keepdim=True) / count
                var = (((x - mean) * mask) ** 2).sum(-1, keepdim=True) / count
                x = (x - mean) / torch.sqrt(var + 1e-7) * mask
            kwargs = {"attention_mask": mask.long()} if self.use_mask else {}
            out = self.model(input_values=x, output_hidden_states=True, **kwargs)
            logits = out.logits.float()
            others = torch.cat([logits[:, : self.bona_index], logits[:, self.bona_index + 1 :]], dim=1)
            pair = torch.stack([torch.logsumexp(others, dim=1), logits[:, self.bona_index]], dim=1)
            states = tuple(out.hidden_states or ())
            frames = None
            if states and hasattr(self.model, "_get_feat_extract_output_lengths"):
                frames = self.model._get_feat_extract_output_lengths(lengths).long()
            return LayerStates(states, frames, logits, pair)

    return HFClassifierNet


def build_classifier(folder: str | os.PathLike, bonafide_label: str | None):
    """(CountermeasureModel, ModelConfig, weights file) of a transformers classifier folder, on CPU in eval mode."""
    from cm_cli.models.model import CountermeasureModel, ModelConfig
    from cm_cli.models.ssl import import_transformers_quiet

    folder = Path(folder)
    labels = read_labels(folder)
    label = check_bonafide_label(labels, bonafide_label, source=str(folder))
    checkpoint = next((folder / f for f in _WEIGHT_FILES if (folder / f).is_file()), None)
    if checkpoint is None:
        raise CmError(f"{folder} holds no model.safetensors or pytorch_model.bin", "download the model again")
    transformers = import_transformers_quiet()
    try:
        model = transformers.AutoModelForAudioClassification.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise CmError(
            f"cannot load {folder}: {str(exc).splitlines()[0][:200]}",
            "give an AutoModelForAudioClassification checkpoint",
        ) from None
    normalize, use_mask = False, True
    try:
        extractor = transformers.AutoFeatureExtractor.from_pretrained(str(folder), local_files_only=True)
        normalize = bool(getattr(extractor, "do_normalize", False))
        use_mask = bool(getattr(extractor, "return_attention_mask", True))
    except (OSError, ValueError):
        pass
    net = _net_class()(model, labels.index(label), normalize, use_mask)
    config = ModelConfig(
        backbone=str(folder),
        backbone_id=str(folder),
        trainable="frozen",
        length_policy="full",
        backbone_options={"bonafide_label": label},
    )
    return CountermeasureModel(config, net, bundle=HF_CLASSIFIER), config, checkpoint
