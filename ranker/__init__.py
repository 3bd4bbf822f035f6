"""Pairwise ranking engine: vote log, TrueSkill ratings, pair selection, import/export.

The core imports neither gradio nor torch.
"""
