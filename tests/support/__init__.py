"""Helpers shared by the tests: a chain, a served API, a CometBFT network, replays, the
naive RFC 9162 reference, an ABCI harness and a template harness. Fixtures that build
them live in tests/conftest.py."""
