"""Fine-tuning JoyQuality on pairwise preferences with accelerate.

``config`` (settings and presets), ``data``/``sources`` (JSON, published datasets,
ranking projects), ``losses``/``metrics``/``robustness`` (pure maths), ``loop`` (the
accelerate loop, :func:`training.loop.train`), ``export`` (final model, calibration,
model card), ``worker``/``desk`` (background runs for the app), ``cli`` (``pstudio-train``).
Importing the package imports nothing heavy.
"""
