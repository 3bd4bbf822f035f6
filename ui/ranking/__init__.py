"""The Ranking tab: labeling page, owner tools, API; one module per layer."""
