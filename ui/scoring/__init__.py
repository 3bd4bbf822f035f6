"""The Scoring tab: score folders with JoyQuality or a fine-tuned run."""
