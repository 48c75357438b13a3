"""Helpers shared by the test suites (tokens, keys, a local JWKS server)."""
