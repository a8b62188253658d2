"""The real-browser check (a standalone script; see README.md). This file makes the folder a
package so that its conftest.py does not clash with tests/conftest.py under --doctest-modules."""
