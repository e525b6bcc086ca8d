"""Whether a Weights & Biases API key is at hand (so W&B may go online without a prompt)."""

from __future__ import annotations

import netrc
import os
from urllib.parse import urlparse


def has_wandb_key() -> bool:
    """``WANDB_API_KEY``, or a ~/.netrc entry for the W&B host."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    try:
        return netrc.netrc().authenticators(host or "api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False
