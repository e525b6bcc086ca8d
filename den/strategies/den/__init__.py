"""Dynamically Expandable Networks: the strategy, its tensor operations, the subnetwork gather."""
