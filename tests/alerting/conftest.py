from __future__ import annotations

from collections.abc import Callable

import pytest

from tocsin.config import ConfigError, ConfigIssue, load_config_text


def _issues(text: str) -> list[ConfigIssue]:
    with pytest.raises(ConfigError) as caught:
        load_config_text(text, "tocsin.yaml", env={})
    return caught.value.issues


@pytest.fixture
def issues_of() -> Callable[..., list[ConfigIssue]]:
    """The issues a config text is refused with (it must be refused)."""
    return _issues
