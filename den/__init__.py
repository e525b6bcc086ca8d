"""den: Dynamically Expandable Networks (Yoon et al., ICLR 2018) and a continual-learning framework."""

__version__ = "0.1.0"
