"""Known-answer vectors from reference/blofin-notes.md; never recomputed with hmac in the test."""

import httpx
import pytest
from pydantic import SecretStr

from hit_server.exchange.blofin_auth import BloFinAuth, Credentials, prehash, sign

SECRET = "test_secret_key_123"
TS = 1597026383085
NONCE = "123e4567-e89b-12d3-a456-426614174000"
ORDER_BODY = (
    '{"instId":"BTC-USDT","marginMode":"cross","positionSide":"net","side":"buy",'
    '"orderType":"limit","price":"35000","size":"0.1"}'
)


def make_auth() -> BloFinAuth:
    creds = Credentials("my-key", SecretStr(SECRET), SecretStr("my-passphrase"))
    return BloFinAuth(creds, clock_ms=lambda: TS, nonce=lambda: NONCE)


@pytest.mark.parametrize(
    ("path", "method", "nonce", "body", "expected"),
    [
        (
            "/api/v1/asset/balances?accountType=futures", "GET", NONCE, "",
            "OTM1ZWFlNGNiNTJmMjBhNTg0MWEyY2Y2MDc2MWFkMzkzZWYzYmU0NzBhMjFjZDY4NWI4MWZhZWI5ODk5NmFkYg==",
        ),
        (
            "/api/v1/trade/order", "POST", NONCE, ORDER_BODY,
            "MjgzMmMyM2M4YmViY2Q5NzVkNjk2Y2JlOTY1YjA3NGQ3YzJlZjg2Zjc0ZmRlODEwZjc1ZjNlMjU5ZTk4NWFiZA==",
        ),
        (
            "/users/self/verify", "GET", NONCE, "",
            "YmFkOGExODg3MjcyYzYzMDI2N2VhMTFjYjc1NWFjYTcyODVkMWE4YTRlYTliZmU3NjVhZThmOTM1YmQxZTU0Ng==",
        ),
        (
            "/api/v1/account/positions?instId=BTC-USDT", "GET", str(TS), "",
            "NmIzYmM2OGM5ZTEyYzU1ZGQ4NmQyZjk4YWFmZDhjZmM2ZGU1ZDQwYjVlMjg0NjkxMDU1MTU3ZDRmMGI1ZGRhMQ==",
        ),
    ],
)
def test_sign_reproduces_known_answer_vectors(path, method, nonce, body, expected):
    assert sign(SECRET, prehash(path, method, str(TS), nonce, body)) == expected


def test_sign_is_not_base64_of_raw_digest():
    result = sign(SECRET, prehash("/api/v1/trade/order", "POST", str(TS), NONCE, ORDER_BODY))
    assert result != "KDLCPIvrzZddaWy+llsHTXwu+G90/egQ918+JZ6YWr0="
    assert len(result) == 88


def test_auth_signs_the_exact_bytes_sent():
    request = httpx.Request(
        "POST", "https://openapi.blofin.com/api/v1/trade/order", content=ORDER_BODY.encode()
    )
    signed = next(make_auth().auth_flow(request))
    assert signed.headers["ACCESS-SIGN"] == (
        "MjgzMmMyM2M4YmViY2Q5NzVkNjk2Y2JlOTY1YjA3NGQ3YzJlZjg2Zjc0ZmRlODEwZjc1ZjNlMjU5ZTk4NWFiZA=="
    )
    assert signed.headers["ACCESS-TIMESTAMP"] == str(TS)
    assert signed.headers["ACCESS-NONCE"] == NONCE
    assert signed.headers["ACCESS-KEY"] == "my-key"
    assert signed.headers["ACCESS-PASSPHRASE"] == "my-passphrase"


def test_auth_signs_query_string_as_sent():
    request = httpx.Request(
        "GET", "https://openapi.blofin.com/api/v1/asset/balances", params={"accountType": "futures"}
    )
    signed = next(make_auth().auth_flow(request))
    assert signed.headers["ACCESS-SIGN"] == (
        "OTM1ZWFlNGNiNTJmMjBhNTg0MWEyY2Y2MDc2MWFkMzkzZWYzYmU0NzBhMjFjZDY4NWI4MWZhZWI5ODk5NmFkYg=="
    )


def test_auth_default_nonce_is_unique_per_request():
    creds = Credentials("k", SecretStr("s"), SecretStr("p"))
    auth = BloFinAuth(creds, clock_ms=lambda: TS)
    nonces = {auth.headers_for("GET", "/x", "")["ACCESS-NONCE"] for _ in range(200)}
    assert len(nonces) == 200
    assert str(TS) not in nonces


def test_auth_applies_clock_offset():
    auth = make_auth()
    auth.offset_ms = -1500
    assert auth.headers_for("GET", "/x", "")["ACCESS-TIMESTAMP"] == str(TS - 1500)


def test_credentials_repr_hides_secrets():
    creds = Credentials("abcdefghijkl", SecretStr("topsecret-value"), SecretStr("pass-value"))
    text = repr(creds)
    assert "topsecret" not in text
    assert "pass-value" not in text
    assert "abcdefghijkl" not in text
