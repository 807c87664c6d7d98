"""Reliability checks: a generated bad-input corpus run through every command that reads media (issue #14)."""
