import pytest

from cm_cli.core.errors import CmError, UsageError
from cm_cli.training.config import TrainConfig, config_diff


def test_exponential_is_an_alias_of_ganin():
    assert TrainConfig(lambda_schedule="exponential").lambda_schedule == "ganin"


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"method": "dann"}, "needs a domain column"),
        ({"method": "coral"}, "preset key domain_column"),
        ({"method": "mmd"}, "preset key domain_column"),
        ({"method": "groupdro"}, "preset key domain_column"),
        ({"method": "sgd"}, r"unknown method 'sgd'"),
        ({"loss": "hinge"}, r"unknown loss 'hinge'"),
        ({"method": "coral", "domain_columns": ["domain"], "method_options": {"wieght": 1}}, "not an option"),
        ({"method": "coral", "domain_columns": ["domain"], "method_options": {"weight": -1}}, "must be >= 0"),
        ({"sam_rho": -0.1}, "sam_rho"),
        ({"lambda_schedule": "cosine"}, "unknown lambda schedule"),
        ({"batch_size": 0}, "batch_size"),
        ({"augment": "clean", "augment_manifest": "x.parquet"}, "exclusive"),
        ({"method": "dann", "domain_columns": ["domain", "domain"]}, "repeated"),
    ],
)
def test_invalid_configurations_are_usage_errors(kwargs, words):
    with pytest.raises(UsageError, match=words):
        TrainConfig(**kwargs).validate()


@pytest.mark.parametrize("method", ["erm", "sam", "asam"])
def test_methods_without_domains_ignore_a_domain_column_with_a_note(method):
    config = TrainConfig(method=method, domain_columns=["domain"]).validate()
    assert config.domain_columns == [] and "ignored" in config.notes[0]


def test_unknown_method_lists_every_registered_choice():
    with pytest.raises(UsageError) as info:
        TrainConfig(method="nope").validate()
    for name in ("erm", "dann", "sam", "asam", "coral", "mmd", "groupdro"):
        assert name in info.value.hint


def test_method_options_get_their_defaults_and_settings_added_later_are_no_difference():
    config = TrainConfig(method="groupdro", domain_columns=["domain"]).validate()
    assert config.method_options == {"step": 0.01}
    old = {k: v for k, v in TrainConfig().to_dict().items() if k not in ("loss", "sam_rho", "method_options")}
    assert config_diff(old, TrainConfig().to_dict()) == []


def test_round_trip_and_diff():
    config = TrainConfig(method="dann", domain_columns=["domain"], lr=3e-4)
    again = TrainConfig.from_dict(config.to_dict())
    assert again == config
    changed = TrainConfig.from_dict({**config.to_dict(), "lr": 1e-3, "workers": 4})
    assert config_diff(config.to_dict(), changed.to_dict()) == ["lr: 0.0003 -> 0.001"]
    with pytest.raises(CmError, match="unknown training setting"):
        TrainConfig.from_dict({"nope": 1})


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"epochs": "six"}, r"--epochs: expected an integer, got 'six'"),
        ({"lr": "fast"}, r"--lr: expected a number, got 'fast'"),
        ({"clip_grad": "off"}, r"--clip-grad: expected a number, got 'off'"),
        ({"batch_size": 2.5}, r"--batch-size: expected an integer"),
        ({"class_weighting": "maybe"}, r"--class-weighting: expected true or false, got 'maybe'"),
        ({"bf16": 2}, r"--bf16: expected true or false"),
        ({"epochs": True}, r"--epochs: expected a number"),
        ({"domain_columns": 5}, r"--domain-columns: expected a list"),
    ],
)
def test_wrong_option_types_are_usage_errors_naming_the_option(kwargs, words):
    with pytest.raises(UsageError, match=words):
        TrainConfig(**kwargs).validate()


def test_text_values_from_presets_are_parsed_strictly():
    config = TrainConfig(
        epochs="6", lr="3e-4", class_weighting="false", bf16="no", save_frozen="yes", max_steps="12", clip_grad=0
    ).validate()
    assert config.epochs == 6 and config.lr == 3e-4 and config.max_steps == 12
    assert config.class_weighting is False and config.bf16 is False and config.save_frozen is True
    assert config.clip_grad is None  # 0 turns clipping off
