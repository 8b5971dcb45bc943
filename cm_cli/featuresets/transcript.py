"""Transcript features (``cm embed --backbone transcript --backbone-id WHISPER_DIR``).

Why: what is said, and how fluently a recogniser hears it, is a cue that survives codecs
that destroy the waveform's fine structure; generated speech tends to be fluent, filler-free
and confidently recognised, while recorded speech is not.

A transformers Whisper model saved in a local directory (model and processor) decodes each
utterance greedily, following the reference implementation (openai/whisper,
``decoding.py``): the language is the most probable language token after
``<|startoftranscript|>``; the no-speech probability is the probability of ``<|nospeech|>``
(``<|nocaptions|>`` in v1/v2 vocabularies) at that same position; the prompt is then
``<|startoftranscript|><|lang|><|transcribe|><|notimestamps|>`` and text tokens are taken by
argmax until ``<|endoftext|>`` (special and timestamp tokens, and the model's
``suppress_tokens``, suppressed). Whisper hears the first 30 s of a clip.

Features (one layer, ``FEATURES``): per-token log-probability (mean, sd, min) and entropy
(nats; mean, max) of the decoded tokens; no-speech and language probabilities; words and
tokens per second; filler rate (English fillers ``FILLERS``), immediate word repetitions,
cut-off words (ending in ``-``), their sum as the disfluency rate; repeated word trigrams;
type-token ratio; the gzip compression ratio of the text (Whisper's hallucination check).
Transcripts go to ``transcripts.jsonl`` beside the table and the language to a ``language``
column. Clips under 0.1 s or silent are not decoded: zeros and a flag.
"""

from __future__ import annotations

import functools
import math
import re
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from cm_cli.core.errors import CmError
from cm_cli.featuresets.registry import FeatureBatch, get_feature_set

__all__ = [
    "FEATURES",
    "FLAGS",
    "FILLERS",
    "text_features",
    "load_whisper",
    "TranscriptExtractor",
    "build_extractor",
    "save_tiny_whisper",
]

SAMPLE_RATE = 16000
WHISPER_SECONDS = 30.0
MIN_SAMPLES = 1600  # 0.1 s
FILLERS = frozenset({"uh", "um", "er", "erm", "ah", "eh", "hm", "hmm", "mm", "mhm", "uhm", "uh-huh"})
TEXT_FEATURES = (
    "n_words",
    "words_per_s",
    "filler_rate",
    "repetition_rate",
    "cutoff_rate",
    "disfluency_rate",
    "trigram_repeat",
    "type_token_ratio",
    "compression_ratio",
)
FEATURES = (
    "logprob_mean",
    "logprob_sd",
    "logprob_min",
    "entropy_mean",
    "entropy_max",
    "no_speech_prob",
    "language_prob",
    "tokens_per_s",
    *TEXT_FEATURES,
)
FLAGS = ("flag_short", "flag_silent", "flag_empty_transcript", "flag_truncated")
_WORD = re.compile(r"[\w']+(?:-[\w']+)*-?")


def text_features(text: str, seconds: float) -> dict[str, float]:
    """The text-only measures of one transcript heard over ``seconds``."""
    words = [w for w in _WORD.findall(text.lower())]
    n = len(words)
    fillers = sum(w in FILLERS for w in words)
    repeats = sum(a == b for a, b in zip(words, words[1:]))
    cutoffs = sum(w.endswith("-") for w in words)
    trigrams = list(zip(words, words[1:], words[2:]))
    raw = text.encode("utf-8")
    return {
        "n_words": float(n),
        "words_per_s": n / seconds if seconds > 0 else 0.0,
        "filler_rate": fillers / n if n else 0.0,
        "repetition_rate": repeats / n if n else 0.0,
        "cutoff_rate": cutoffs / n if n else 0.0,
        "disfluency_rate": (fillers + repeats + cutoffs) / n if n else 0.0,
        "trigram_repeat": 1.0 - len(set(trigrams)) / len(trigrams) if trigrams else 0.0,
        "type_token_ratio": len(set(words)) / n if n else 0.0,
        "compression_ratio": len(raw) / len(zlib.compress(raw)) if raw else 0.0,
    }


@functools.lru_cache(maxsize=2)
def load_whisper(directory: str, device: str = "cpu"):
    """(model, processor) from a local Whisper directory, never a download."""
    from cm_cli.core.heavy import import_transformers

    spec = get_feature_set("transcript")
    path = Path(directory).expanduser()
    if not (path / "config.json").is_file():
        raise CmError(
            f"Whisper directory {directory}: no saved Whisper model there (no config.json)",
            f"download one first, e.g. `{spec.download}`",
            option="backbone_id",
        )
    transformers = import_transformers()
    try:
        processor = transformers.WhisperProcessor.from_pretrained(str(path), local_files_only=True)
        model = transformers.WhisperForConditionalGeneration.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError, TypeError) as exc:
        raise CmError(
            f"Whisper directory {directory}: not a loadable Whisper model and processor "
            f"({str(exc).splitlines()[0][:160]})",
            f"download one first, e.g. `{spec.download}`",
            option="backbone_id",
        ) from None
    return model.to(device).eval(), processor


class _Vocabulary:
    """The special token ids greedy decoding needs, read from the tokenizer."""

    def __init__(self, tokenizer, model):
        from transformers.models.whisper.tokenization_whisper import LANGUAGES

        def token(text: str) -> int | None:
            found = tokenizer.convert_tokens_to_ids(text)
            return None if found is None or found == tokenizer.unk_token_id and text != tokenizer.unk_token else found

        self.sot, self.eot = token("<|startoftranscript|>"), token("<|endoftext|>")
        self.transcribe, self.no_timestamps = token("<|transcribe|>"), token("<|notimestamps|>")
        self.no_speech = token("<|nospeech|>") or token("<|nocaptions|>")
        if None in (self.sot, self.eot, self.transcribe, self.no_timestamps):
            raise CmError(
                "the Whisper tokenizer lacks <|startoftranscript|>, <|endoftext|>, <|transcribe|> or <|notimestamps|>",
                "give a Whisper model saved with its processor",
            )
        self.languages = {code: i for code in LANGUAGES if (i := token(f"<|{code}|>")) is not None}
        size = int(model.config.vocab_size)
        self.suppress = np.zeros(size, dtype=bool)
        self.suppress[self.eot + 1 :] = True  # special and timestamp tokens follow <|endoftext|> in every vocabulary
        extra = getattr(model.generation_config, "suppress_tokens", None) or model.config.suppress_tokens or []
        self.suppress[[t for t in extra if 0 <= t < size]] = True


class TranscriptExtractor:
    """``cm embed --backbone transcript``: one layer of ``FEATURES``, transcripts as records."""

    name = "transcript"
    extra = ("duration_s", "language")

    def __init__(self, model, processor, directory: str, device: str, *, max_tokens: int | None = None):
        self.model, self.processor, self.device = model, processor, device
        self.vocab = _Vocabulary(processor.tokenizer, model)
        self.max_positions = int(model.config.max_target_positions)
        self.max_tokens = max_tokens
        self.layers = {"layer_00": list(FEATURES)}
        self.flags = list(FLAGS)
        self.info = {
            "model_dir": directory,
            "decoding": "greedy",
            "languages": len(self.vocab.languages),
            "fillers": sorted(FILLERS),
            "seconds_heard": WHISPER_SECONDS,
        }

    def _decode(self, waves: list[np.ndarray], seconds: list[float]) -> list[dict]:
        import torch

        v = self.vocab
        inputs = self.processor.feature_extractor(waves, sampling_rate=SAMPLE_RATE, return_tensors="pt")
        features = inputs.input_features.to(self.device, dtype=next(self.model.parameters()).dtype)
        with torch.inference_mode():
            encoder = self.model.model.encoder(features)
            first = self.model(
                encoder_outputs=encoder, decoder_input_ids=torch.full((len(waves), 1), v.sot, device=self.device)
            )
            probs = first.logits[:, -1].float().softmax(dim=-1).cpu().numpy()
            results = []
            for p in probs:
                if v.languages:
                    codes = list(v.languages)
                    scores = p[[v.languages[c] for c in codes]]
                    best = int(scores.argmax())
                    language, language_prob = codes[best], float(scores[best] / max(scores.sum(), 1e-12))
                else:
                    language, language_prob = "", 0.0
                results.append(
                    {
                        "language": language,
                        "language_prob": language_prob,
                        "no_speech_prob": float(p[v.no_speech]) if v.no_speech is not None else 0.0,
                        "tokens": [],
                        "logprobs": [],
                        "entropies": [],
                    }
                )
            prompt = [
                [v.sot] + ([v.languages[r["language"]]] if r["language"] else []) + [v.transcribe, v.no_timestamps]
                for r in results
            ]
            width = max(len(p) for p in prompt)
            ids = torch.tensor([[v.sot] * (width - len(p)) + p for p in prompt], device=self.device)
            limit = self.max_positions - width
            steps = min(limit, self.max_tokens or int(8 * max(seconds, default=1.0)) + 8)
            suppress = torch.from_numpy(v.suppress).to(self.device)
            done = np.zeros(len(waves), dtype=bool)
            import inspect

            cache_key = "cache" if "cache" in inspect.signature(self.model.forward).parameters else "past_key_values"
            past = None
            step_ids = ids
            for _ in range(max(0, steps)):
                out = self.model(
                    encoder_outputs=encoder, decoder_input_ids=step_ids, use_cache=True, **{cache_key: past}
                )
                past = getattr(out, cache_key, None) or out.past_key_values
                logits = out.logits[:, -1].float()
                logits[:, suppress] = -math.inf
                logits[:, v.eot] = out.logits[:, -1, v.eot].float()
                logp = torch.log_softmax(logits, dim=-1)
                entropy = -(logp.exp() * torch.nan_to_num(logp, neginf=0.0)).sum(dim=-1)
                chosen = logp.argmax(dim=-1)
                for i, token in enumerate(chosen.tolist()):
                    if done[i]:
                        continue
                    if token == v.eot:
                        done[i] = True
                        continue
                    results[i]["tokens"].append(token)
                    results[i]["logprobs"].append(float(logp[i, token]))
                    results[i]["entropies"].append(float(entropy[i]))
                if done.all():
                    break
                step_ids = torch.where(torch.from_numpy(done).to(self.device), v.eot, chosen)[:, None]
            for i, r in enumerate(results):
                r["truncated_tokens"] = not done[i]
        return results

    def extract(self, waves: list) -> FeatureBatch:
        waves = [np.nan_to_num(np.asarray(w, dtype=np.float32)) for w in waves]
        n = len(waves)
        seconds = [len(w) / SAMPLE_RATE for w in waves]
        flags = {
            "flag_short": np.array([len(w) < MIN_SAMPLES for w in waves]),
            "flag_silent": np.array([(np.abs(w).max() if len(w) else 0.0) < 1e-4 for w in waves]),
            "flag_empty_transcript": np.ones(n, dtype=bool),
            "flag_truncated": np.array([s > WHISPER_SECONDS for s in seconds]),
        }
        usable = [i for i in range(n) if not (flags["flag_short"][i] or flags["flag_silent"][i])]
        matrix = np.zeros((n, len(FEATURES)), dtype=np.float32)
        records = [
            {"text": "", "language": "", "language_prob": 0.0, "no_speech_prob": 0.0, "n_tokens": 0, "decoded": False}
            for _ in range(n)
        ]
        heard = [min(s, WHISPER_SECONDS) for s in seconds]
        if usable:
            decoded = self._decode(
                [waves[i][: int(WHISPER_SECONDS * SAMPLE_RATE)] for i in usable], [heard[i] for i in usable]
            )
            for i, r in zip(usable, decoded):
                text = self.processor.tokenizer.decode(r["tokens"], skip_special_tokens=True).strip()
                lp, ent = np.asarray(r["logprobs"]), np.asarray(r["entropies"])
                values = {
                    "logprob_mean": lp.mean() if lp.size else 0.0,
                    "logprob_sd": lp.std() if lp.size else 0.0,
                    "logprob_min": lp.min() if lp.size else 0.0,
                    "entropy_mean": ent.mean() if ent.size else 0.0,
                    "entropy_max": ent.max() if ent.size else 0.0,
                    "no_speech_prob": r["no_speech_prob"],
                    "language_prob": r["language_prob"],
                    "tokens_per_s": len(r["tokens"]) / heard[i],
                    **text_features(text, heard[i]),
                }
                matrix[i] = np.nan_to_num(np.array([values[k] for k in FEATURES], dtype=np.float64))
                flags["flag_empty_transcript"][i] = not text
                records[i] = {
                    "text": text,
                    "language": r["language"],
                    "language_prob": r["language_prob"],
                    "no_speech_prob": r["no_speech_prob"],
                    "n_tokens": len(r["tokens"]),
                    "avg_logprob": float(values["logprob_mean"]),
                    "decoded": True,
                    "hit_token_limit": bool(r["truncated_tokens"]),
                }
        return FeatureBatch(
            vectors={"layer_00": matrix},
            flags=flags,
            extra={
                "duration_s": np.asarray(seconds, dtype=np.float32),
                "language": np.array([r["language"] for r in records], dtype=object),
            },
            records=records,
        )


def _bytes_to_unicode() -> list[str]:
    """GPT-2's byte-level alphabet (the base of Whisper's vocabulary)."""
    bs = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


_TINY_SPECIALS = [
    "<|endoftext|>",
    "<|startoftranscript|>",
    "<|en|>",
    "<|de|>",
    "<|translate|>",
    "<|transcribe|>",
    "<|startoflm|>",
    "<|startofprev|>",
    "<|nospeech|>",
    "<|notimestamps|>",
]


def save_tiny_whisper(path, *, rig: bool = False, dims: str = "test"):
    """A random Whisper with a byte-level vocabulary plus 'Ġum', saved with its processor (tests, benchmarks).

    ``dims``: ``test`` (d_model 16, one layer each side) or ``tiny`` (whisper-tiny's dimensions and
    vocabulary size, for timing). ``rig``: the decoder's final layer norm outputs one constant vector
    b and the embeddings of <|de|> and 'Ġum' point along b, so the language is German and every
    text token is 'um' (a decoding with a known answer).
    """
    import torch

    from cm_cli.core.heavy import import_transformers

    transformers = import_transformers()
    vocab = {c: i for i, c in enumerate(_bytes_to_unicode())}
    vocab["Ġum"] = len(vocab)
    tokenizer = transformers.WhisperTokenizer(vocab=vocab, merges=[])
    tokenizer.add_special_tokens({"additional_special_tokens": _TINY_SPECIALS})
    ids = dict(zip(_TINY_SPECIALS, tokenizer.convert_tokens_to_ids(_TINY_SPECIALS)))
    eot = ids["<|endoftext|>"]
    size = (
        dict(
            vocab_size=len(tokenizer),
            d_model=16,
            encoder_layers=1,
            decoder_layers=1,
            encoder_attention_heads=2,
            decoder_attention_heads=2,
            encoder_ffn_dim=32,
            decoder_ffn_dim=32,
            max_target_positions=64,
        )
        if dims == "test"
        # openai/whisper-tiny's config.json
        else dict(
            vocab_size=51865,
            d_model=384,
            encoder_layers=4,
            decoder_layers=4,
            encoder_attention_heads=6,
            decoder_attention_heads=6,
            encoder_ffn_dim=1536,
            decoder_ffn_dim=1536,
            max_target_positions=448,
        )
    )
    config = transformers.WhisperConfig(
        **size,
        decoder_start_token_id=ids["<|startoftranscript|>"],
        pad_token_id=eot,
        bos_token_id=eot,
        eos_token_id=eot,
        begin_suppress_tokens=None,
    )
    torch.manual_seed(0)
    model = transformers.WhisperForConditionalGeneration(config)
    if rig:
        with torch.no_grad():
            norm = model.model.decoder.layer_norm
            b = torch.linspace(-1, 1, config.d_model)
            norm.weight.zero_()
            norm.bias.copy_(b)
            embed = model.model.decoder.embed_tokens.weight
            embed.mul_(0.01)
            embed[ids["<|de|>"]] = 10 * b
            embed[vocab["Ġum"]] = 5 * b
    model.save_pretrained(path)
    transformers.WhisperProcessor(
        feature_extractor=transformers.WhisperFeatureExtractor(), tokenizer=tokenizer
    ).save_pretrained(path)
    return path


def build_extractor(backbone_id: str | None, *, device: Any = "cpu", options: dict | None = None):
    device = str(device)
    model, processor = load_whisper(str(Path(backbone_id).expanduser().resolve()), device)
    max_tokens = (options or {}).get("max_tokens")
    return TranscriptExtractor(
        model, processor, str(backbone_id), device, max_tokens=int(max_tokens) if max_tokens else None
    )
