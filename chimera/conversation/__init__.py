"""The conversation engine."""
