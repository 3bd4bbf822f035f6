"""The Dataset tab: publish, export, import and back up preference datasets."""
