"""One door to the code sets for the rest of the platform: is this code usable, what does it mean.

Inference, metrics, cards and audits ask by (system, code), the same pair the label space uses,
so they never import simple_icd_10_cm or the CPT catalog directly. "Valid" here means valid for
output: an ICD-10-CM code must be billable in the configured code-set version (a category such
as E11 is not), a CPT/HCPCS code must be in the active catalog (built-in, or a licensed file set
with `use_cpt_catalog`). Systems medcoder ships no code set for (ICD-10-PCS, ICD-9) raise rather
than answer False, so they are never silently dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from medcoder.codes import cpt, icd10cm
from medcoder.codes.cpt import CptCatalog
from medcoder.codes.errors import UnknownCodeError, UnsupportedCodeSystemError
from medcoder.codes.formats import CPT, HCPCS, ICD10CM, CodeFormatError, is_canonical

__all__ = [
    "CodeFormatError",
    "UnknownCodeError",
    "UnsupportedCodeSystemError",
    "is_valid_code",
    "describe",
    "code_set_versions",
    "use_cpt_catalog",
    "active_cpt_catalog",
    "validator_for",
]
log = logging.getLogger(__name__)

_SUPPORTED = (ICD10CM, CPT, HCPCS)
_active_cpt: CptCatalog = cpt.BUILTIN_CATALOG


def use_cpt_catalog(catalog: CptCatalog) -> None:
    """Make `catalog` (e.g. from `cpt.load_licensed_cpt`) the one every lookup uses."""
    global _active_cpt
    _active_cpt = catalog


def active_cpt_catalog() -> CptCatalog:
    return _active_cpt


def _check_system(system: str) -> None:
    if system not in _SUPPORTED:
        raise UnsupportedCodeSystemError(f"medcoder has no code set for {system!r}; supported: {', '.join(_SUPPORTED)}")


def is_valid_code(system: str, code: str) -> bool:
    """True when `code` (canonical form) may be emitted for `system` (see module docstring)."""
    _check_system(system)
    if system == ICD10CM:
        return icd10cm.is_billable(code)
    return isinstance(code, str) and is_canonical(system, code) and code in _active_cpt


def validator_for(systems: Iterable[str]) -> Callable[[str, str], bool] | None:
    """`is_valid_code` when medcoder has a code set for every system a model predicts, else None.

    Metrics then measure the invalid-code rate only where it can be measured (a CodiEsp ICD-10-PCS
    label space has no code set here), and say so in a log line instead of reporting a false 0.
    """
    missing = sorted(set(systems) - set(_SUPPORTED))
    if missing:
        log.info("invalid_code_rate not computed: no code set for %s", ", ".join(missing))
        return None
    return is_valid_code


def describe(system: str, code: str) -> str:
    """The description shown for `code`; UnknownCodeError when the code set lacks it."""
    _check_system(system)
    if system == ICD10CM:
        return icd10cm.description(code)
    if not (isinstance(code, str) and is_canonical(system, code)):
        raise UnknownCodeError(f"{code!r} is not a canonical {system} code")
    return _active_cpt.description(code)


def code_set_versions() -> dict[str, str]:
    """What a model records as `code_sets`: the version (or source) of every code set in use."""
    from medcoder.codes.icd11 import Icd11Translator

    return {
        ICD10CM: icd10cm.CODE_SET_VERSION,
        CPT: _active_cpt.version,
        HCPCS: _active_cpt.version,
        "ICD-11": f"MMS {Icd11Translator.packaged().release}",
    }
