"""Preference data: one reader and one writer per format, the dataset card, Hub push and live backup.

No gradio and no torch at import; ``datasets``/``huggingface_hub`` are imported where a
function needs them.
"""
