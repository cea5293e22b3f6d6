"""The http step's config: what validate refuses, and how render puts values in (encoded into
the URL, never spliced: the host never changes; a header never takes a line break)."""

from __future__ import annotations

import datetime as dt
import re
import threading
from typing import Any
from urllib.parse import unquote

import httpx2
import pytest

from jobport.domain.connections import Resolved
from jobport.engine import steps
from jobport.engine.steps import StepContext, StepFailed
from jobport.engine.steps import http as http_step
from jobport.engine.templating import TemplateError

BASE = {"connection": "crm", "path": "/customers/{{ params.id }}/refresh"}


def rendered(config: dict[str, Any], **params: Any) -> dict[str, Any]:
    steps.validate("http", config)
    return steps.render("http", config, {"params": params, "execution": {"id": "e-1"}})


def context(*connections: Resolved) -> StepContext:
    known = {c.name: c for c in connections}

    def resolve(name: str) -> Resolved:
        if name not in known:
            raise StepFailed(f"no connection {name!r} in this project")
        return known[name]

    ctx = StepContext("e-1", "call", lambda s, t: None, threading.Event(), 1.0)
    ctx.connection = resolve
    return ctx


CRM = Resolved("crm", "http", "https://bot:pa55word@api.example.com/v1", {"X-Api-Key": "k-123456"})


def request_of(config: dict[str, Any], **params: Any) -> http_step.Request:
    return http_step.build_request(rendered(config, **params), context(CRM))


def test_the_kind_is_registered() -> None:
    assert "http" in steps.kinds()


@pytest.mark.parametrize(
    ("config", "reason"),
    [
        ({}, "exactly one of connection"),
        ({"connection": "crm", "url": "https://x.example/"}, "exactly one of connection"),
        ({"connection": "{{ params.c }}"}, "literal name"),
        ({"connection": "crm", "path": "customers"}, "starts with '/'"),
        ({"url": "https://x.example/", "path": "/a"}, "path goes with connection"),
        ({"url": "ftp://x.example/"}, "http(s)"),
        ({"url": "/relative"}, "absolute"),
        ({"url": "https://{{ params.host }}/x"}, "must be literal"),
        ({"url": "https://api.example.com{{ params.p }}"}, "must be literal"),
        ({"url": "https://api.example.com:{{ params.port }}/x"}, "must be literal"),
        ({"connection": "crm", "method": "get"}, "method must be one of"),
        ({"connection": "crm", "method": "{{ params.m }}"}, "method must be one of"),
        ({"connection": "crm", "headers": {"Host": "evil.example"}}, "not a header"),
        ({"connection": "crm", "headers": {"X A": "1"}}, "not a header"),
        ({"connection": "crm", "headers": {"X-A": "a\r\nX-B: 1"}}, "without line breaks"),
        ({"connection": "crm", "headers": {"X-A": {"no": 1}}}, "without line breaks"),
        ({"connection": "crm", "query": {"a": {"b": 1}}}, "query must be an object"),
        ({"connection": "crm", "query": ["a"]}, "query must be an object"),
        ({"connection": "crm", "json": {}, "form": {}}, "not both"),
        ({"connection": "crm", "expectedStatus": [200, 700]}, "expectedStatus"),
        ({"connection": "crm", "expectedStatus": "200"}, "expectedStatus"),
        ({"connection": "crm", "timeoutSeconds": 0}, "timeoutSeconds"),
        ({"connection": "crm", "timeoutSeconds": True}, "timeoutSeconds"),
        ({"connection": "crm", "retries": 21}, "retries"),
        ({"connection": "crm", "retries": 1.5}, "retries"),
        ({"connection": "crm", "resultHeaders": ["ETag", "bad name"]}, "resultHeaders"),
        ({"connection": "crm", "body": "x"}, "unknown http config keys"),
    ],
)
def test_validate_refuses_bad_config_with_a_clear_reason(
    config: dict[str, Any], reason: str
) -> None:
    with pytest.raises(ValueError, match="(?i)" + re.escape(reason)):
        steps.validate("http", config)


def test_the_issue_example_is_valid_and_renders_each_value_in_its_channel() -> None:
    config = {
        "connection": "crm",
        "method": "POST",
        "path": "/customers/{{ params.id }}/refresh",
        "query": {"since": "{{ params.since }}"},
        "headers": {"X-Request": "{{ execution.id }}"},
        "json": {"who": "{{ params.who }}"},
        "expectedStatus": [200, 201],
        "timeoutSeconds": 30,
        "retries": 3,
        "resultHeaders": ["ETag"],
    }
    out = rendered(config, id="a/b?x=1#y", since="2026-01-01 00:00&x=1", who="Ann & <Bob>")
    assert out["path"] == "/customers/a%2Fb%3Fx%3D1%23y/refresh"
    assert out["query"] == {"since": "2026-01-01 00:00&x=1"}  # httpx2 encodes it when sent
    assert out["headers"] == {"X-Request": "e-1"}
    assert out["json"] == {"who": "Ann & <Bob>"}
    request = http_step.build_request(out, context(CRM))
    assert request.method == "POST"
    assert request.url.raw_path == (
        b"/v1/customers/a%2Fb%3Fx%3D1%23y/refresh?since=2026-01-01+00%3A00%26x%3D1"
    )
    assert request.headers == {"X-Api-Key": "k-123456", "X-Request": "e-1"}
    assert request.body == {"json": {"who": "Ann & <Bob>"}}
    assert request.expected == (200, 201) and request.retries == 3


@pytest.mark.parametrize(
    "value",
    [
        "@evil.example",
        "//evil.example",
        "../admin",
        "..%2F..%2Fadmin",
        "evil.example:80@x",
        "\\evil",
    ],
)
def test_a_value_in_the_path_never_changes_the_host(value: str) -> None:
    request = request_of(BASE, id=value)
    assert request.url.host == "api.example.com"
    assert request.url.port is None and request.url.scheme == "https"
    assert request.url.raw_path.startswith(b"/v1/customers/")
    assert request.url.raw_path.endswith(b"/refresh")
    segment = request.url.raw_path.split(b"/")[3]  # one segment, all of the value
    assert unquote(segment.decode()) == value


@pytest.mark.parametrize("value", ["@evil.example", "//evil.example/x", "a/../../b"])
def test_a_value_in_a_url_never_changes_its_host(value: str) -> None:
    out = rendered({"url": "https://api.example.com/v1/{{ params.p }}?a=1"}, p=value)
    url = httpx2.URL(out["url"])
    assert url.host == "api.example.com" and url.raw_path.count(b"/") == 2
    assert url.params["a"] == "1"


@pytest.mark.parametrize(
    ("path", "value"),
    [("/c/{{ params.v }}", "."), ("/c/{{ params.v }}/x", ".."), ("/%2E{{ params.v }}", ".")],
)
def test_a_value_that_would_climb_the_path_is_refused(path: str, value: str) -> None:
    with pytest.raises(TemplateError, match="path segment"):
        rendered(BASE | {"path": path}, v=value)


def test_an_encoded_dot_value_stays_encoded_text() -> None:
    assert rendered(BASE | {"path": "/c/{{ params.v }}"}, v="%2e%2E")["path"] == "/c/%252e%252E"


def test_a_value_beside_literal_text_in_a_segment_is_encoded_and_kept() -> None:
    out = rendered(BASE | {"path": "/files/{{ params.name }}.csv"}, name="..")
    assert out["path"] == "/files/...csv"
    out = rendered(BASE | {"path": "/x/{{ params.a }}-{{ params.b }}"}, a="1 2", b="é")
    assert out["path"] == "/x/1%202-%C3%A9"


@pytest.mark.parametrize("value", ["a\r\nX-Admin: 1", "a\nb", "a\rb", "a\x00b"])
def test_a_header_value_with_a_line_break_is_refused(value: str) -> None:
    with pytest.raises(TemplateError, match="line break"):
        rendered({"connection": "crm", "headers": {"X-Who": "{{ params.who }}"}}, who=value)


def test_an_undefined_value_in_the_path_is_a_template_error() -> None:
    with pytest.raises(TemplateError, match=r"path: .* has no attribute 'nope'"):
        rendered(BASE | {"path": "/{{ params.nope }}"})


def test_query_and_form_values_are_data() -> None:
    config = {"url": "https://x.example/s?keep=1", "query": {"q": "{{ params.q }}", "n": [1, 2]}}
    request = http_step.build_request(rendered(config, q="a&b=c"), context())
    assert request.url.params.multi_items() == [
        ("keep", "1"),
        ("q", "a&b=c"),
        ("n", "1"),
        ("n", "2"),
    ]
    form = rendered({"url": "https://x.example/", "form": {"f": "{{ params.f }}"}}, f="1&2")
    assert http_step.build_request(form, context()).body == {"data": {"f": "1&2"}}


def test_a_connection_query_and_path_are_joined_on_its_base() -> None:
    conn = Resolved("q", "http", "https://h.example/api/?key=abc", {})
    out = rendered({"connection": "q", "path": "/x"})
    assert str(http_step.build_request(out, context(conn)).url) == "https://h.example/api/x?key=abc"


def test_a_step_header_may_add_to_but_not_replace_a_connections() -> None:
    request = request_of(BASE | {"headers": {"Accept": "text/csv"}}, id="1")
    assert request.headers == {"X-Api-Key": "k-123456", "Accept": "text/csv"}
    with pytest.raises(StepFailed, match="'X-Api-Key' is set by connection 'crm'"):
        request_of(BASE | {"headers": {"x-api-key": "mine"}}, id="1")


def test_unknown_and_sql_connections_fail_the_step_clearly() -> None:
    with pytest.raises(StepFailed, match="no connection 'nope'"):
        http_step.build_request(rendered({"connection": "nope"}), context(CRM))
    db = Resolved("db", "sql", "postgresql://u:secret@h/db", {})
    with pytest.raises(StepFailed, match="'db' is a sql connection; an http step needs"):
        http_step.build_request(rendered({"connection": "db"}), context(db))


def test_the_logged_url_and_every_text_lose_the_connections_secrets() -> None:
    request = request_of(BASE, id="1")
    assert request.shown == "https://api.example.com/v1/customers/1/refresh"
    assert request.scrub({"a": ["pa55word and k-123456"]}) == {"a": ["*** and ***"]}
    bearer = Resolved("b", "http", "https://h.example", {"Authorization": "Bearer tok-98765"})
    request = http_step.build_request(rendered({"connection": "b"}), context(bearer))
    assert request.scrub("echo: tok-98765") == "echo: ***"


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)
    assert http_step.retry_after_seconds("3", now) == 3.0
    assert http_step.retry_after_seconds(" 0 ", now) == 0.0
    assert http_step.retry_after_seconds("Mon, 30 Nov 2026 12:00:07 GMT", now) == 7.0
    assert http_step.retry_after_seconds("Mon, 30 Nov 2026 11:00:00 GMT", now) == 0.0
    assert http_step.retry_after_seconds("soon", now) is None
    assert http_step.retry_after_seconds("-5", now) is None
    assert http_step.retry_after_seconds(None, now) is None
