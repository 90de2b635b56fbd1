"""The column layout every trajlab dataset shares (D4RL's arrays plus stable ids), named once.

`dataset`, `hdf5` and `sampler` all speak these names, so none of them needs to import another to agree on
what a dataset holds.
"""

from __future__ import annotations

ARRAY_FIELDS = ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts")
"""Per-transition arrays in the D4RL layout."""
ID_FIELDS = ("episode_ids", "transition_ids")
"""Per-transition ids that never change when a dataset is filtered, split or saved."""
OPTIONAL_FIELDS = ("costs",)
"""Per-transition arrays a dataset may lack (the safety cost of safe RL)."""
COLUMNS = (*ARRAY_FIELDS, *ID_FIELDS, *OPTIONAL_FIELDS)
"""Every column, in file order."""

METADATA_ATTR = "trajlab_metadata"
"""Root attribute of a trajlab HDF5 file holding the dataset's metadata as JSON."""
FORMAT_ATTR = "trajlab_format"
"""Root attribute holding the file format version."""
FORMAT_VERSION = 1
