"""Local stand-ins for clouds we cannot reach from the tests: small HTTP servers on 127.0.0.1
that answer with recorded API exchanges (in the documented shapes of each API) and keep just
enough state (what was created is listed afterwards), so the real SDKs talk real HTTP to them."""
