import pytest

from cm_cli.core.errors import CmError, UsageError
from cm_cli.training.config import TrainConfig, config_diff


def test_exponential_is_an_alias_of_ganin():
    assert TrainConfig(lambda_schedule="exponential").lambda_schedule == "ganin"


@pytest.mark.parametrize("kwargs, words", [
    ({"method": "dann"}, "domain-column"),
    ({"method": "erm", "domain_columns": ["domain"]}, "only used with"),
    ({"method": "sgd"}, "unknown method"),
    ({"lambda_schedule": "cosine"}, "unknown lambda schedule"),
    ({"batch_size": 0}, "batch-size"),
    ({"augment": "clean", "augment_manifest": "x.parquet"}, "exclusive"),
    ({"method": "dann", "domain_columns": ["domain", "domain"]}, "repeated"),
])
def test_invalid_configurations_are_usage_errors(kwargs, words):
    with pytest.raises(UsageError, match=words):
        TrainConfig(**kwargs).validate()


def test_round_trip_and_diff():
    config = TrainConfig(method="dann", domain_columns=["domain"], lr=3e-4)
    again = TrainConfig.from_dict(config.to_dict())
    assert again == config
    changed = TrainConfig.from_dict({**config.to_dict(), "lr": 1e-3, "workers": 4})
    assert config_diff(config.to_dict(), changed.to_dict()) == ["lr: 0.0003 -> 0.001"]
    with pytest.raises(CmError, match="unknown training setting"):
        TrainConfig.from_dict({"nope": 1})
