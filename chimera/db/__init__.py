"""Postgres storage: tables, engines, administration."""
