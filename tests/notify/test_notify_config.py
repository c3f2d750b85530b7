"""The notify config group: options compose, secrets only from the environment, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf
from pydantic import ValidationError

from components.notify import (
    DISCORD_WEBHOOK_ENV,
    TELEGRAM_CHAT_ENV,
    TELEGRAM_TOKEN_ENV,
    NotifyConfig,
    build_channels,
    without_secrets,
)
from core.errors import ConfigError
from core.validation import format_validation_error
from machine.compose import compose_dict

ROOT = Path(__file__).resolve().parents[2]
WEBHOOK = "https://discord.com/api/webhooks/1234567890/Webhook-SECRET-part"
TOKEN = "123456789:AAH-telegram-SECRET-token"
CHAT = "-1001234567890"


def notify_option(option: str) -> str:
    """``notify=X`` once conf/config.yaml lists the group in its defaults; ``+notify=X`` until then."""
    defaults = OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "config.yaml").defaults)
    listed = any(isinstance(d, dict) and "notify" in d for d in defaults)
    return f"notify={option}" if listed else f"+notify={option}"


def composed_notify(option: str, *overrides: str) -> NotifyConfig:
    return NotifyConfig.model_validate(compose_dict(notify_option(option), *overrides)["notify"])


@pytest.fixture
def secrets_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DISCORD_WEBHOOK_ENV, WEBHOOK)
    monkeypatch.setenv(TELEGRAM_TOKEN_ENV, TOKEN)
    monkeypatch.setenv(TELEGRAM_CHAT_ENV, CHAT)


@pytest.mark.parametrize(("option", "channels"), [
    ("none", ()), ("discord", ("discord",)), ("telegram", ("telegram",)), ("both", ("discord", "telegram"))])
def test_each_notify_option_composes_into_a_valid_config(secrets_in_env: None, option: str,
                                                         channels: tuple[str, ...]) -> None:
    config = composed_notify(option)

    assert config.channels == channels
    assert [c.name for c in build_channels(config)] == list(channels)
    assert (config.heartbeat_hours, config.in_replay) == (6, False)
    assert config.telegram.api_base == "https://api.telegram.org"
    assert config.discord.webhook_url.get_secret_value() == WEBHOOK
    assert (config.telegram.bot_token.get_secret_value(), config.telegram.chat_id) == (TOKEN, CHAT)


def test_api_base_heartbeat_period_and_replay_policy_are_overridable_keys(secrets_in_env: None) -> None:
    config = composed_notify("telegram", "notify.telegram.api_base=http://127.0.0.1:8081/",
                             "notify.heartbeat_hours=2", "notify.in_replay=true", "notify.retry.attempts=3")

    assert config.telegram.api_base == "http://127.0.0.1:8081"
    assert (config.heartbeat_ms, config.in_replay, config.retry.attempts) == (7_200_000, True, 3)
    assert config.sends_in("replay") and config.sends_in("live")


def test_without_the_environment_no_secret_is_set_and_none_still_validates(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (DISCORD_WEBHOOK_ENV, TELEGRAM_TOKEN_ENV, TELEGRAM_CHAT_ENV):
        monkeypatch.delenv(name, raising=False)

    config = composed_notify("none")

    assert config.discord.webhook_url is None and config.telegram.bot_token is None
    assert not config.sends_in("replay") and config.sends_in("paper")


@pytest.mark.parametrize(("option", "unset", "key"), [
    ("discord", DISCORD_WEBHOOK_ENV, "notify.discord.webhook_url"),
    ("both", DISCORD_WEBHOOK_ENV, "notify.discord.webhook_url"),
    ("telegram", TELEGRAM_TOKEN_ENV, "notify.telegram.bot_token"),
    ("telegram", TELEGRAM_CHAT_ENV, "notify.telegram.chat_id"),
])
def test_a_selected_channel_without_its_secret_names_the_variable_to_set(
        secrets_in_env: None, monkeypatch: pytest.MonkeyPatch, option: str, unset: str, key: str) -> None:
    monkeypatch.delenv(unset)

    with pytest.raises(ConfigError) as caught:
        composed_notify(option)

    message = str(caught.value)
    assert unset in message and key in message
    assert "\n" not in message and TOKEN not in message and WEBHOOK not in message


def test_a_webhook_url_that_is_not_http_is_refused_without_quoting_it() -> None:
    bad = "discord.com/api/webhooks/1/Webhook-SECRET-part"

    with pytest.raises(ConfigError) as caught:
        NotifyConfig.model_validate({"channels": ["discord"], "discord": {"webhook_url": bad}})

    assert DISCORD_WEBHOOK_ENV in str(caught.value)
    assert "SECRET" not in str(caught.value)


def test_unknown_keys_and_bad_values_are_refused_naming_the_key() -> None:
    with pytest.raises(ValidationError) as caught:
        NotifyConfig.model_validate({"channels": ["slack"], "heartbeat_hour": 6, "telegram": {"api_base": "ftp://x"}})

    message = format_validation_error(caught.value, "notify")
    assert "notify.heartbeat_hour: unknown key" in message
    assert "notify.channels.0" in message and "'discord' or 'telegram'" in message
    assert "notify.telegram.api_base" in message


def test_secrets_do_not_show_in_reprs_dumps_or_a_stored_config(secrets_in_env: None) -> None:
    config = composed_notify("both")
    run_config = {"seed": 7, "notify": config.model_dump(mode="python")}
    run_config["notify"]["discord"]["webhook_url"] = WEBHOOK  # as OmegaConf.to_container(resolve=True) gives it
    run_config["notify"]["telegram"]["bot_token"] = TOKEN

    shown = [repr(config), str(config), config.model_dump_json(), repr(build_channels(config)),
             str(without_secrets(run_config))]

    for text in shown:
        assert TOKEN not in text and WEBHOOK not in text and "SECRET" not in text
    assert run_config["notify"]["telegram"]["bot_token"] == TOKEN  # the caller's dict is left alone
    assert without_secrets({"seed": 7}) == {"seed": 7}
