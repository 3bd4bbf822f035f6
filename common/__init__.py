"""Small pieces every package may import: data contracts, shared maths, paths, images.

Nothing here imports gradio or torch, and nothing here imports ``ranker``, ``model``,
``training`` or ``ui``: it sits below all of them.
"""
