"""Plumbing every layer uses: atomic file writes, the stop flag of signals, progress bars."""
