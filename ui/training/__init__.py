"""The Training tab: start, watch and stop fine-tuning runs."""
