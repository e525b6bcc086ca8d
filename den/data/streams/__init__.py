"""Task streams cut from a dataset."""
