"""Experiment loggers: the run hands them metrics; strategies never see them."""
