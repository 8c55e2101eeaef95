"""redact_headers: secrets replaced in any casing, everything else kept in order."""

from runtap.addon.redact import DEFAULT_REDACTED, REDACTED, redact_headers


def test_secret_headers_are_redacted_in_any_casing_and_order_is_kept():
    headers = [
        ("authorization", "Bearer sk-secret"),
        ("Content-Type", "application/json"),
        ("API-KEY", "azure-secret"),
        ("OpenAI-Organization", "org-1"),
        ("openai-project", "proj-1"),
        ("Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
        ("set-cookie", "c=3"),
        ("Proxy-Authorization", "Basic x"),
        ("X-Request-ID", "req_1"),
    ]
    out = redact_headers(headers)
    assert [name for name, _ in out] == [name for name, _ in headers]
    assert out[1] == ["Content-Type", "application/json"]
    assert out[-1] == ["X-Request-ID", "req_1"]
    secret_values = {value for name, value in headers if name not in ("Content-Type", "X-Request-ID")}
    assert all(value == REDACTED for name, value in out if name not in ("Content-Type", "X-Request-ID"))
    assert not secret_values & {value for _, value in out}


def test_extra_names_are_redacted_too():
    out = redact_headers([("X-Gateway-Token", "tok"), ("x-other", "keep")], extra=["x-gateway-token"])
    assert out == [["X-Gateway-Token", REDACTED], ["x-other", "keep"]]


def test_defaults_cover_the_documented_secrets():
    lowered = {name.lower() for name in DEFAULT_REDACTED}
    assert {
        "authorization",
        "api-key",
        "openai-organization",
        "openai-project",
        "cookie",
        "set-cookie",
        "proxy-authorization",
    } <= lowered
