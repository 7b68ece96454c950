"""Data: every supported source becomes an in-memory :class:`Dataset` of uint8 tensors.

Use :func:`load_dataset` with a spec string (``digits``, ``mnist:ROOT``, ``course:DIR``...).
"""

from genda.data.domain import DataError, Dataset, Domain
from genda.data.embedded import EMBEDDED
from genda.data.spec import load_dataset

__all__ = ["EMBEDDED", "DataError", "Dataset", "Domain", "load_dataset"]
