"""Launchers of the real parts that tests and the dev environment run."""
