"""The one training loop and optimiser factory, evaluation, and the (torch-free) metrics."""
