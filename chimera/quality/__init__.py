"""Conversation quality, version ``quality.v2``: defect flags per turn, conversation measures,
a calibrated score and an accept/reject decision with its reasons (see docs/quality.md).

:func:`chimera.quality.score.score_v2` is the entry point.
"""
