"""From a coder's raw predictions to the lines `medcoder predict` writes (model-independent pieces).

- `inputs`: read and check batch input; one bad line becomes an error entry, never a crash.
- `routing`: which codes need a human reviewer, and why (`RoutingPolicy`, configs/routing/).
- `contract`: render one prediction line and check any line against the prediction contract.
- `manifest`: seal a model artifact folder with SHA-256 hashes and detect tampering.
"""

from medcoder.inference.contract import ContractError, render_prediction, validate_contract_line
from medcoder.inference.inputs import (
    DEFAULT_MAX_CHARS,
    ERROR_KINDS,
    InputError,
    InputNote,
    read_input_lines,
    validate_input,
)
from medcoder.inference.manifest import MANIFEST_NAME, TamperedArtifactError, verify_manifest, write_manifest
from medcoder.inference.routing import RoutingPolicy, apply_routing

__all__ = [
    "ContractError",
    "render_prediction",
    "validate_contract_line",
    "DEFAULT_MAX_CHARS",
    "ERROR_KINDS",
    "InputError",
    "InputNote",
    "read_input_lines",
    "validate_input",
    "MANIFEST_NAME",
    "TamperedArtifactError",
    "verify_manifest",
    "write_manifest",
    "RoutingPolicy",
    "apply_routing",
]
