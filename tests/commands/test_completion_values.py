"""What <TAB> offers (issue 31): presets of the command, spec chains, codecs this install can encode."""

from __future__ import annotations

from tests.commands.test_completions import complete


def test_preset_completion_offers_only_the_commands_presets():
    from cm_cli.core.presets import list_presets

    train, _ = complete("cm train --preset ")
    degrade, _ = complete("cm degrade --preset ")
    assert "toy_lcnn_erm" in train and not any(n.startswith("aug_") for n in train)
    assert "aug_codec_basic" in degrade and "toy_lcnn_erm" not in degrade
    assert set(train) == {n for p in list_presets("train") for n in (p.name, *p.aliases)}
    everything, _ = complete("cm presets show ")  # `show` has no presets of its own: all of them
    assert {"toy_lcnn_erm", "aug_codec_basic", "toy_manifest_subset"} <= set(everything)


def test_chain_completion_walks_names_parameters_and_choices():
    assert complete("cm degrade --chain mp")[0] == ["mp3"]
    assert complete("cm degrade --chain mp3:")[0] == ["mp3:kbps="]
    assert complete("cm degrade --chain mp3:kbps=32+noise:t")[0] == ["mp3:kbps=32+noise:type="]
    assert complete("cm degrade --chain opus:band=")[0] == ["opus:band=wb", "opus:band=nb"]
    assert complete("cm degrade --chain opus:band=nb:")[0] == ["opus:band=nb:kbps="]  # a given key is not offered again
    assert complete("cm eval --degrade tele")[0] == ["telephony"]


def test_codec_completion_puts_encodable_codecs_first_and_marks_the_others(monkeypatch):
    from cm_cli.commands._complete import complete_codec
    from cm_cli.degrade import codecs

    items = complete_codec("")
    names = [n for n, _ in items]
    marked = [n for n, help in items if help.startswith("NOT ENCODABLE HERE")]
    assert {"g723_1", "g726", "mp3"} <= set(names) - set(marked)  # PyAV encodes these on every install
    assert names[-len(marked) :] == marked if marked else True
    monkeypatch.setattr(codecs, "find_encoder", lambda encoders: None)  # planted: no encoder anywhere
    none_here = dict(complete_codec("g72"))
    assert set(none_here) == {"g722", "g723_1", "g726"}
    assert all(h.startswith("NOT ENCODABLE HERE") and "cm doctor" in h for h in none_here.values())
