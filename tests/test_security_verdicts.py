"""How each security check judges what it was answered, both ways, on data alone (exporter.probes.security_verdicts):
a check that would pass a broken server, or fail a correct one, fails here."""

from __future__ import annotations

import base64
import json

from exporter import metrics
from exporter.probes.security_target import SecurityExpectations
from exporter.probes.security_verdicts import (
    Answer,
    ObjectAttempt,
    answer_shape,
    boolean_finding,
    boolean_payloads,
    error_finding,
    error_payloads,
    renders_html,
    sleep_payload,
    tampered_tokens,
    time_finding,
    verdict_csrf,
    verdict_injection,
    verdict_object_authorization,
    verdict_rate_limit,
    verdict_status,
    verdict_token_tampering,
    verdict_xss,
    xss_markers,
)


def test_every_key_of_a_security_block_is_a_check_label_and_back() -> None:
    assert tuple(SecurityExpectations.model_fields) == metrics.SECURITY_CHECKS


# -- unauthenticated, lower_role, rate limits ---------------------------------------------------------------------


def test_a_status_check_holds_only_on_the_expected_status() -> None:
    assert verdict_status(401, 401) == (True, "")
    assert verdict_status(200, 401) == (False, "expected HTTP 401, got HTTP 200")
    assert verdict_status(None, 403) == (False, "expected HTTP 403, got no answer")


def test_a_burst_must_meet_a_429_and_no_5xx_within_its_window() -> None:
    assert verdict_rate_limit([200, 200, 429], 429, 0.2, 1.0) == (True, "")
    assert verdict_rate_limit([401, 401, 429], 429, 0.2, 1.0) == (True, "")  # without credentials: 401s, then 429
    assert verdict_rate_limit([200, 200, 200], 429, 0.2, 1.0) == (
        False, "no HTTP 429 in a burst of 3 within 1s (answers: 200)")
    assert "HTTP 503" in verdict_rate_limit([429, 503], 429, 0.2, 1.0)[1]  # a limit that fails open is no limit
    assert verdict_rate_limit([200, 429], 429, 2.5, 1.0) == (True, "")  # a slow burst that met the limit: held
    held, cause = verdict_rate_limit([200, 200], 429, 2.5, 1.0)
    assert not held and "longer than its window (1s): the check cannot tell" in cause


# -- token_tampering ----------------------------------------------------------------------------------------------


def _jwt(header: dict[str, object], claims: dict[str, object], signature: str) -> str:
    def part(document: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()

    return f"{part(header)}.{part(claims)}.{signature}"


def _decoded(part: str) -> dict[str, object]:
    result: dict[str, object] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return result


def test_a_jwt_is_tampered_three_ways_and_its_signature_where_every_bit_counts() -> None:
    token = _jwt({"alg": "HS256", "typ": "JWT"}, {"sub": "7", "exp": 2_000_000_000}, "Abc_signature-XY")
    forged = dict(tampered_tokens(token))
    changed = forged["a token with its signature changed"].split(".")
    assert changed[:2] == token.split(".")[:2] and changed[2] != "Abc_signature-XY"
    assert changed[2][1:] == "bc_signature-XY"  # the first character: the last may carry only padding bits
    unsigned = forged["an unsigned token (alg none)"].split(".")
    assert _decoded(unsigned[0])["alg"] == "none" and unsigned[1] == token.split(".")[1] and unsigned[2] == ""
    claims = forged["a token with its claims changed"].split(".")
    assert _decoded(claims[1])["exp"] == 2_000_000_000 + 365 * 86400 and claims[2] == "Abc_signature-XY"


def test_an_opaque_token_is_changed_in_the_middle() -> None:
    (what, forged), = tampered_tokens("opaque-token-0123")
    assert what == "a changed token" and forged != "opaque-token-0123" and len(forged) == len("opaque-token-0123")


def test_tampered_and_expired_tokens_must_each_be_refused_with_401() -> None:
    refused = [("a token with its signature changed", 401), ("an expired token", 401)]
    assert verdict_token_tampering(200, refused, 401) == (True, "")
    assert verdict_token_tampering(403, refused, 401) == (True, "")  # a valid token of a role that may not: fine
    assert verdict_token_tampering(200, [("an expired token", 200)], 401) == (
        False, "an expired token got HTTP 200, expected HTTP 401")
    # a forged token read as valid, then refused for its role, was still accepted as that user
    assert not verdict_token_tampering(403, [("an unsigned token (alg none)", 403)], 401)[0]


def test_token_tampering_cannot_pass_when_even_the_valid_token_is_refused() -> None:
    held, cause = verdict_token_tampering(401, [("a token with its signature changed", 401)], 401)
    assert not held and "the valid token got HTTP 401" in cause


# -- object_authorization -----------------------------------------------------------------------------------------


def test_another_users_requests_for_a_new_object_must_get_403_or_404() -> None:
    kept_out = [ObjectAttempt("GET /orders/5", 404), ObjectAttempt("POST /orders/5/cancel", 403)]
    assert verdict_object_authorization(201, None, kept_out, 200) == (True, "")
    let_in = [ObjectAttempt("GET /orders/5", 404), ObjectAttempt("POST /orders/5/cancel", 200)]
    held, cause = verdict_object_authorization(201, None, let_in, 200)
    assert not held and "HTTP 200 for POST /orders/5/cancel" in cause
    assert not verdict_object_authorization(201, None, [ObjectAttempt("GET /orders/5", 401)], 200)[0]


def test_object_authorization_cannot_pass_without_an_object_its_owner_can_read() -> None:
    assert "could not create" in verdict_object_authorization(422, None, [], None)[1]
    assert "could not create" in verdict_object_authorization(201, "cannot capture 'id'", [], None)[1]
    held, cause = verdict_object_authorization(201, None, [ObjectAttempt("GET /orders/5", 404)], 404)
    assert not held and "the owner got HTTP 404 for its own object" in cause


# -- injection ----------------------------------------------------------------------------------------------------

OK = Answer(200, b'{"orders": [{"id": 1}]}', 0.01)


def test_a_5xx_or_a_database_error_where_the_harmless_value_got_a_2xx_is_error_based_injection() -> None:
    assert "got HTTP 500" in (error_finding(OK, "x'", Answer(500, b"internal error")) or "")
    leaked = Answer(200, b'{"error": "syntax error at or near \\"AND\\""}')
    assert "database error" in (error_finding(OK, "x'", leaked) or "")
    assert error_finding(OK, "x'", Answer(400, b'{"error": "bad status"}')) is None
    assert error_finding(OK, "O'Brien", Answer(200, b'{"orders": []}')) is None  # a bound parameter: no error
    assert error_finding(Answer(404), "x'", Answer(500)) is None  # nothing to compare with


def test_a_true_and_a_false_condition_answered_differently_is_boolean_based_injection() -> None:
    value = "created"
    true, false = boolean_payloads(value)[0]
    base = answer_shape(OK, [value])
    rows = answer_shape(Answer(200, b'{"orders": [{"id": 2}, {"id": 3}]}'), [true])  # other rows, same shape
    none = answer_shape(Answer(200, b'{"orders": []}'), [false])
    assert boolean_finding([base, base], rows, none, (true, false)) is not None
    # a correct API: both conditions are just strings, neither matches
    assert boolean_finding([base, base], none, none, (true, false)) is None
    # an API whose harmless answers already differ: the difference says nothing
    assert boolean_finding([base, none], rows, none, (true, false)) is None


def test_what_an_answer_echoes_is_not_a_difference() -> None:
    true, false = "x' AND '1'='1", "x' AND '1'='2"
    page = "<p>No orders with status {}; 12 shown</p>"
    one = answer_shape(Answer(200, page.format(true).encode()), [true])
    other = answer_shape(Answer(200, page.format(false.replace("'", "&#x27;")).encode().replace(b"12", b"7")),
                         [false])
    assert one == other
    assert answer_shape(Answer(200, b"[]"), []) != answer_shape(Answer(200, b"[1]"), [])
    assert answer_shape(Answer(200, b"[]"), []) != answer_shape(Answer(404, b"[]"), [])


def test_a_sleep_that_slows_the_answer_twice_is_time_based_injection() -> None:
    payload = sleep_payload("{v}'||(SELECT '' FROM pg_sleep({s}))||'", "created", 2)
    assert payload == "created'||(SELECT '' FROM pg_sleep(2))||'"
    assert time_finding([0.02, 0.03], 2.05, 0.02, 2.04, 2.0, payload) is not None
    assert time_finding([0.02, 0.03], 1.64, 0.02, 1.70, 2.0, payload) is not None  # within the 20 % margin
    assert time_finding([0.02, 0.03], 1.50, 0.02, 2.04, 2.0, payload) is None  # not by most of its sleep
    assert time_finding([0.02, 0.03], 2.05, 2.01, 2.04, 2.0, payload) is None  # slow with a sleep of 0 too
    assert time_finding([0.02, 0.03], 2.05, 0.02, 0.03, 2.0, payload) is None  # one slow answer: noise


def test_injection_payloads_come_in_several_shapes() -> None:
    assert error_payloads("a") == ["a'", 'a"', "a')"]
    pairs = boolean_payloads("a")
    assert len(pairs) == 4 and all(t != f for t, f in pairs)
    assert ("a AND 1=1", "a AND 1=2") in pairs  # a number, without quotes


def test_injection_holds_without_findings_and_cannot_pass_on_a_refused_harmless_value() -> None:
    assert verdict_injection(OK, []) == (True, "")
    assert verdict_injection(OK, ["query status: error-based: ..."]) == (False, "query status: error-based: ...")
    held, cause = verdict_injection(Answer(401), [])
    assert not held and "the harmless value got HTTP 401" in cause


# -- xss ----------------------------------------------------------------------------------------------------------


def test_a_marker_back_unescaped_in_a_page_is_xss() -> None:
    nonce = "a1b2c3"
    tag = xss_markers(nonce)[1]
    assert tag == '"><perfxssa1b2c3>'
    page = Answer(200, f"<h1>Orders with status {tag}</h1>".encode(), content_type="text/html; charset=utf-8")
    held, cause = verdict_xss(nonce, [("query status", page)])
    assert not held and cause.startswith("query status: the marker came back unescaped")
    escaped = Answer(200, b"<h1>Orders with status &quot;&gt;&lt;perfxssa1b2c3&gt;</h1>", content_type="text/html")
    assert verdict_xss(nonce, [("query status", escaped)]) == (True, "")
    as_json = Answer(200, json.dumps({"status": tag}).encode(), content_type="application/json")
    assert verdict_xss(nonce, [("query status", as_json)]) == (True, "")  # a browser does not render JSON
    untyped = Answer(200, tag.encode(), content_type="")
    assert not verdict_xss(nonce, [("query status", untyped)])[0]  # without a type a browser sniffs: HTML


def test_what_a_browser_renders_as_a_page() -> None:
    assert renders_html("text/html; charset=utf-8") and renders_html("application/xhtml+xml") and renders_html("")
    assert not renders_html("application/json") and not renders_html("text/plain")


# -- csrf ---------------------------------------------------------------------------------------------------------


def test_a_forged_state_change_must_be_refused() -> None:
    assert verdict_csrf(303, 1, 200, 403) == (True, "")
    assert verdict_csrf(200, 1, 200, 422) == (True, "")
    assert verdict_csrf(303, 1, 200, 303) == (
        False, "the state change without a CSRF token, from a foreign origin, was accepted (HTTP 303)")
    assert not verdict_csrf(303, 1, 200, 201)[0]
    assert not verdict_csrf(303, 1, 200, 500)[0]


def test_csrf_cannot_pass_without_a_session_that_lets_its_holder_in() -> None:
    assert "set 0 cookies" in verdict_csrf(200, 0, None, None)[1]
    assert "the login got HTTP 401" in verdict_csrf(401, 1, None, None)[1]
    assert "with the session cookie alone" in verdict_csrf(303, 1, 401, 403)[1]
    assert "check its method and path" in verdict_csrf(303, 1, 200, 404)[1]
