import pytest
from hypothesis import given
from hypothesis import strategies as st

from goglobal_shared.webhook_targets import MAX_URL_LENGTH, webhook_url_problem


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hooks",
        "https://localhost/hooks",
        "https://api.localhost/hooks",
        "https://10.1.2.3/x",
        "https://172.16.0.9/x",
        "https://192.168.1.1/x",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/x",
        "https://[fd00::1]/x",
        "https://0.0.0.0/x",
    ],
)
def test_targets_inside_the_network_are_refused_unless_allowed(url: str) -> None:
    assert webhook_url_problem(url, allow_private=False) is not None
    assert webhook_url_problem(url, allow_private=True) is None


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://hooks.example.com/x", "https URL"),
        ("file:///etc/passwd", "https URL"),
        ("https://user:secret@hooks.example.com/x", "credentials"),
        ("https://hooks.example.com/x\r\nX-Injected: 1", "control characters"),
        ("https://hooks.example.com/a b", "whitespace"),
        ("https://hooks.example.com/" + "a" * MAX_URL_LENGTH, "longer than"),
    ],
)
def test_malformed_targets_are_refused_even_when_private_ones_are_allowed(url: str, reason: str) -> None:
    problem = webhook_url_problem(url, allow_private=True)
    assert problem is not None and reason in problem


@pytest.mark.parametrize("url", ["https://hooks.example.com/goglobal", "https://8.8.8.8/x", "https://[2001:4860::1]/x"])
def test_public_targets_are_accepted(url: str) -> None:
    assert webhook_url_problem(url, allow_private=False) is None


@given(st.text(max_size=300))
def test_any_text_gets_an_answer_and_never_an_exception(url: str) -> None:
    result = webhook_url_problem(url, allow_private=False)
    assert result is None or isinstance(result, str)
