"""asd: unsupervised anomalous machine-sound detection, the package behind the book."""
from asd.config import Config, get_config
from asd.utils import seed_everything

__all__ = ["Config", "get_config", "seed_everything"]
__version__ = "0.1.0"
