"""Sample messages and credentials for tests and demos (fake values, never real secrets)."""

API_KEY = "test-server-key-0123456789abcdefghijklmnopqrstuv"
TOKEN = "MTIzNDU2Nzg5.fake-discord-token.for-tests-only-xyz"  # noqa: S105 - a fake
SIGNAL = "LONG BTC-USDT Entry: 60000 SL: 58000 TP: 65000"
SHORT_SIGNAL = "SHORT ETH-USDT Entry: 3200 SL: 3300 TP: 3000"
INVALID = "LONG BTC-USDT Entry: 60000 SL: 61000 TP: 65000"
CHATTER = "gm everyone, BTC looks strong today"
