"""Adapters that let agent frameworks keep their state in Stigmer; each is an optional extra."""
