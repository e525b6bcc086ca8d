"""The one training loop and optimiser factory, and the (torch-free) metrics."""
