"""Code sets: ICD-10-CM lookups, ICD-11 translation, the CPT catalog and the licensed-file loader."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from data_support import needs_reference

import medcoder.codes as codes
from medcoder.codes import cpt, em, icd10cm, icd11
from medcoder.codes.errors import UnknownCodeError, UnsupportedCodeSystemError
from medcoder.codes.formats import CodeFormatError
from medcoder.paths import resources_dir, shared_data_dir

WHO_DIR = shared_data_dir() / "icd11"
needs_who = needs_reference("icd11")


# --- ICD-10-CM -------------------------------------------------------------------------------


def test_code_set_version_is_read_from_the_package_data() -> None:
    # The package ships the CDC "April 1, 2026" update: fiscal year 2026, month 04.
    assert icd10cm.CODE_SET_VERSION == "FY2026-04"
    assert icd10cm.CODE_SET_EFFECTIVE_DATE.isoformat() == "2026-04-01"


def test_release_parsing_rejects_an_xml_whose_version_disagrees(tmp_path: Path) -> None:
    (tmp_path / "icd10cm-tabular-October-1-2025.xml").write_text("<ICD10CM.tabular><version>2025</version>")
    with pytest.raises(RuntimeError, match="fiscal year 2026"):
        icd10cm._shipped_release(tmp_path)
    (tmp_path / "icd10cm-tabular-October-1-2025.xml").write_text("<ICD10CM.tabular><version>2026</version>")
    assert icd10cm._shipped_release(tmp_path)[0] == "FY2026-10"


@pytest.mark.parametrize("raw", [" e11.65 ", "E1165", "e11.65", "E11.65\n", "e1165"])
def test_normalize_gives_the_canonical_dotted_form(raw: str) -> None:
    assert icd10cm.normalize(raw) == "E11.65"


@pytest.mark.parametrize(
    "raw", ["", "   ", "E1", "11.65", "E11.65.1", "E1.165", "E11..65", "E11-65", "E11.65123", "ICD E11"]
)
def test_normalize_rejects_malformed_codes_naming_the_system(raw: str) -> None:
    with pytest.raises(CodeFormatError, match="ICD-10-CM"):
        icd10cm.normalize(raw)


def test_normalize_rejects_non_strings() -> None:
    with pytest.raises(CodeFormatError, match="must be a string, got int"):
        icd10cm.normalize(1165)  # type: ignore[arg-type]


def test_every_core_code_is_valid_and_billable() -> None:
    not_billable = [c for c in icd10cm.CORE_ICD10CM_CODES if not icd10cm.is_billable(c)]
    assert not_billable == []
    assert all(icd10cm.is_valid(c) for c in icd10cm.CORE_ICD10CM_CODES)
    assert len(set(icd10cm.CORE_ICD10CM_CODES)) == len(icd10cm.CORE_ICD10CM_CODES)


@pytest.mark.parametrize("parent", ["E11", "E11.6", "I50.2", "J45.90", "S72.001"])
def test_parents_are_valid_but_not_billable(parent: str) -> None:
    assert icd10cm.is_valid(parent)
    assert not icd10cm.is_billable(parent)


@pytest.mark.parametrize("code", ["E11.99", "E1165", "e11.65", "4", "E08-E13", "Z99.999", "", None])
def test_unknown_blocks_chapters_and_uncanonical_spellings_are_not_valid(code: object) -> None:
    assert not icd10cm.is_valid(code)  # type: ignore[arg-type]
    assert not icd10cm.is_billable(code)  # type: ignore[arg-type]


def test_seventh_character_extensions_are_billable() -> None:
    assert icd10cm.is_billable("S72.001A")


def test_descriptions() -> None:
    assert icd10cm.description("E11.65") == "Type 2 diabetes mellitus with hyperglycemia"
    assert icd10cm.description("E11") == "Type 2 diabetes mellitus"
    assert icd10cm.description("F32.A") == "Depression, unspecified"


def test_description_of_an_unknown_code_is_a_clear_value_error() -> None:
    with pytest.raises(UnknownCodeError, match=r"E11\.99 is not an ICD-10-CM code in FY2026-04"):
        icd10cm.description("E11.99")
    with pytest.raises(UnknownCodeError, match="normalize it first"):
        icd10cm.description("E1165")
    assert issubclass(UnknownCodeError, ValueError) and not issubclass(UnknownCodeError, KeyError)


def test_ancestors_are_codes_only_nearest_first() -> None:
    assert icd10cm.ancestors("E11.65") == ["E11.6", "E11"]
    assert icd10cm.ancestors("S72.001A") == ["S72.001", "S72.00", "S72.0", "S72"]
    assert icd10cm.ancestors("B99.9") == ["B99"]  # B99 is also a block's name: listed once
    assert icd10cm.ancestors("I10") == []
    with pytest.raises(UnknownCodeError):
        icd10cm.ancestors("E11.99")


# --- ICD-11 ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def packaged() -> icd11.Icd11Translator:
    return icd11.Icd11Translator.packaged()


@pytest.mark.parametrize(
    "source, code, kind, via",
    [
        ("E11.9", "5A11", "one-to-one", None),
        ("I10", "BA00.Z", "one-to-one", None),
        ("E11.65", "5A11", "via-parent", "E11.6"),  # CM 5th character under WHO E11.6
        ("I50.22", "BD1Z", "via-parent", "I50"),  # no WHO I50.2: falls to the category
        ("Z87.891", "QC4Z", "via-parent", "Z87.8"),
        ("I11.0", "BA01/BD1Z", "post-coordinated", None),  # two stems
        ("A00.0", "1A00&XN8P1", "post-coordinated", None),  # stem & extension code
        ("U07.1", None, "none", None),  # WHO maps it to a block only (no ICD-11 category)
        ("C95.7", None, "none", None),  # WHO: "No Mapping"
        ("D37.0", None, "none", None),  # WHO maps it to a chapter only
        ("Z68.30", None, "none", None),  # BMI: CM-only category, no WHO key at all
    ],
)
def test_translation_kinds(
    packaged: icd11.Icd11Translator, source: str, code: str | None, kind: str, via: str | None
) -> None:
    t = packaged.translate(source)
    assert (t.source, t.code, t.map, t.via) == (source, code, kind, via)
    assert (t.title is None) == (code is None)


def test_translation_titles_and_contract_dict(packaged: icd11.Icd11Translator) -> None:
    t = packaged.translate("e1165")  # any accepted spelling; source is canonical
    assert t.source == "E11.65"
    assert t.to_dict() == {"code": "5A11", "title": "Type 2 diabetes mellitus", "map": "via-parent"}
    with pytest.raises(CodeFormatError):
        packaged.translate("not a code")


def test_a_parent_is_not_used_when_who_maps_the_full_code_to_no_category() -> None:
    table = {"U07.1": (None, None), "U07": ("XX00", "Parent title")}
    t = icd11.Icd11Translator(table, release="2024-01", source="test").translate("U07.1")
    assert (t.code, t.map, t.via) == (None, "none", None)
    assert icd11.Icd11Translator(table, "2024-01", "test").translate("U07.2").via == "U07"


def test_packaged_table_is_small_attributed_and_complete(packaged: icd11.Icd11Translator) -> None:
    path = resources_dir() / icd11.PACKAGED_TABLE_NAME
    assert path.stat().st_size < 1_500_000
    head = path.read_text(encoding="utf-8")[:2000]
    for needed in (
        "World Health Organization",
        "CC BY-ND 3.0 IGO",
        "2024-01",
        "Generated by: python scripts/build_icd11_table.py",
    ):
        assert needed in head
    assert packaged.release == "2024-01"
    assert len(packaged) > 12_000  # every WHO ICD-10 category, not a hand-picked subset


def test_load_translator_falls_back_to_packaged(tmp_path: Path) -> None:
    assert icd11.load_translator(None).source.endswith(icd11.PACKAGED_TABLE_NAME)
    assert icd11.load_translator(tmp_path / "absent").source.endswith(icd11.PACKAGED_TABLE_NAME)


def test_who_reader_names_file_and_line_of_a_bad_row(tmp_path: Path) -> None:
    header = (
        "10ClassKind\t10DepthInKind\ticd10Code\ticd10Chapter\ticd10Title\t11ClassKind\t11DepthInKind\t"
        "ICD-11 FoundationURI\tLinearization (releaseURI)\ticd11Code\ticd11Chapter\ticd11Title\t2024-Jan-21"
    )
    good = "category\t1\tA00\tI\tCholera\tcategory\t1\tu\tu\t1A00\t01\tCholera"
    (tmp_path / icd11.WHO_MAP_FILE).write_bytes(("\ufeff" + "\r\n".join([header, good, good]) + "\r\n").encode())
    with pytest.raises(icd11.Icd11TableError, match=rf"{icd11.WHO_MAP_FILE}:3: field icd10Code: duplicate"):
        icd11.Icd11Translator.from_who_dir(tmp_path)
    (tmp_path / icd11.WHO_MAP_FILE).write_bytes(
        ("\ufeff" + "\r\n".join([header, good, "category\t1"]) + "\r\n").encode()
    )
    with pytest.raises(icd11.Icd11TableError, match=":3: 2 columns"):
        icd11.Icd11Translator.from_who_dir(tmp_path)
    (tmp_path / icd11.WHO_MAP_FILE).write_bytes(("\ufeff" + "\r\n".join([header, good]) + "\r\n").encode())
    t = icd11.Icd11Translator.from_who_dir(tmp_path)  # BOM + CRLF read cleanly
    assert (t.release, t.translate("A00.9").code, t.translate("A00.9").via) == ("2024-01", "1A00", "A00")


@needs_who
def test_packaged_table_and_who_files_translate_core_codes_identically(packaged: icd11.Icd11Translator) -> None:
    who = icd11.Icd11Translator.from_who_dir(WHO_DIR)
    assert who.release == packaged.release
    for code in icd10cm.CORE_ICD10CM_CODES:
        assert who.translate(code) == packaged.translate(code), code


@needs_who
def test_build_script_regenerates_the_packaged_table_byte_for_byte(tmp_path: Path) -> None:
    import runpy

    script = runpy.run_path(str(Path(__file__).parents[1] / "scripts" / "build_icd11_table.py"))
    out = tmp_path / "icd11_map.tsv"
    assert script["main"](["--out", str(out)]) == 0  # the default WHO folder, as the shipped table was built
    assert out.read_bytes() == (resources_dir() / icd11.PACKAGED_TABLE_NAME).read_bytes()


def test_table_stats(packaged: icd11.Icd11Translator) -> None:
    stats = icd11.icd11_table_stats(packaged)
    assert stats["rows"] == len(packaged)
    assert 0 < stats["distinct_icd11_codes"] <= stats["rows_with_icd11_target"] <= stats["rows"]
    kinds = stats["core_map_kinds"]
    assert sum(kinds.values()) == len(icd10cm.CORE_ICD10CM_CODES)
    assert all(kinds[k] > 0 for k in icd11.MAP_KINDS)  # the core set exercises every kind


# --- CPT / HCPCS -----------------------------------------------------------------------------


def test_em_codes_are_ordered_and_split_by_patient_type() -> None:
    assert em.OFFICE_EM_CODES == ("99202", "99203", "99204", "99205", "99211", "99212", "99213", "99214", "99215")
    assert em.OFFICE_EM_CODES == em.OFFICE_NEW_PATIENT + em.OFFICE_ESTABLISHED
    assert not set(cpt.PROCEDURE_CODES) & set(em.VISIT_EM_CODES)
    assert "99201" not in cpt.BUILTIN_CATALOG  # deleted in 2021


def test_builtin_catalog_has_every_platform_code_with_a_plain_description() -> None:
    expected = {
        "93000",
        "94010",
        "36415",
        "90471",
        "90686",
        "81002",
        "87880",
        "99406",
        "20610",
        "10060",
        "69210",
        "82962",
        "G0444",
        "G0008",
        "G0009",
        "G0010",
        "J3301",
    }
    assert set(cpt.PROCEDURE_CODES) == expected
    assert em.PREVENTIVE_EM_CODES == tuple(f"9938{i}" for i in range(1, 8)) + tuple(f"9939{i}" for i in range(1, 8))
    catalog = cpt.BUILTIN_CATALOG
    assert catalog.source == "medcoder plain-language"
    for code in em.VISIT_EM_CODES + cpt.PROCEDURE_CODES:
        assert code in catalog
        assert 10 <= len(catalog.description(code)) <= 90
    assert "moderate complexity" in catalog.description("99214")
    assert "established" in catalog.description("99214") and "new patient" in catalog.description("99204")
    assert catalog.codes("HCPCS") == ("G0008", "G0009", "G0010", "G0444", "J3301")
    with pytest.raises(UnknownCodeError, match="99999"):
        catalog.description("99999")


def test_licensed_file_replaces_builtin_descriptions(tmp_path: Path) -> None:
    path = tmp_path / "cpt_licensed.csv"
    path.write_text(
        '\ufeffCode,Description\n99214,"Licensed text, with a comma"\n\n99499,Licensed other E/M\n', encoding="utf-8"
    )
    catalog = cpt.load_licensed_cpt(path)
    assert catalog.source == str(path)
    assert catalog.description("99214") == "Licensed text, with a comma"
    assert catalog.description("93000") == cpt.BUILTIN_CATALOG.description("93000")  # not in the file
    assert "99499" in catalog and len(catalog) == len(cpt.BUILTIN_CATALOG) + 1
    assert re.fullmatch(r"licensed cpt_licensed\.csv sha256:[0-9a-f]{12}", catalog.version)


@pytest.mark.parametrize(
    "content, message",
    [
        (
            "code,description\n99214,Fine\n9921,Too short\n",
            r"cpt\.csv:3: field 'code': '9921' is not a CPT or HCPCS code",
        ),
        ("code,description\n99214,Fine\n93000,   \n", r"cpt\.csv:3: field 'description': empty for code 93000"),
        ("code,description\n99214,Fine\n99214,Again\n", r"cpt\.csv:3: field 'code': 99214 already given on line 2"),
        ("code,description\n99214,Fine\n93000,a,b\n", r"cpt\.csv:3: 3 fields, header has 2"),
        ("99214,Office visit\n", r"cpt\.csv:1: header"),
        ("code,description\n", r"no code rows"),
        ('code,description\n99214,"unterminated\n', r"cpt\.csv:\d+: not valid CSV"),
    ],
)
def test_malformed_licensed_file_names_file_line_and_field(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "cpt.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(cpt.CptFileError, match=message) as err:
        cpt.load_licensed_cpt(path)
    assert "Office visit" not in str(err.value)  # licensed text is never echoed


def test_licensed_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "cpt.csv"
    path.write_bytes(b"code,description\n99214,caf\xe9\n")
    with pytest.raises(cpt.CptFileError, match="not UTF-8"):
        cpt.load_licensed_cpt(path)


# --- Facade ----------------------------------------------------------------------------------


@pytest.fixture()
def restore_cpt_catalog():
    before = codes.active_cpt_catalog()
    yield
    codes.use_cpt_catalog(before)


def test_facade_validity_follows_each_system() -> None:
    assert codes.is_valid_code("ICD-10-CM", "E11.65")
    assert not codes.is_valid_code("ICD-10-CM", "E11")  # valid category, not billable
    assert codes.is_valid_code("CPT", "99214")
    assert not codes.is_valid_code("CPT", "G0444") and codes.is_valid_code("HCPCS", "G0444")
    assert not codes.is_valid_code("CPT", "99999")
    with pytest.raises(UnsupportedCodeSystemError, match="ICD-10-PCS"):
        codes.is_valid_code("ICD-10-PCS", "0DTJ4ZZ")


def test_facade_descriptions_and_versions(tmp_path: Path, restore_cpt_catalog: None) -> None:
    assert codes.describe("ICD-10-CM", "I10") == "Essential (primary) hypertension"
    assert codes.describe("HCPCS", "G0444") == cpt.BUILTIN_CATALOG.description("G0444")
    with pytest.raises(UnknownCodeError):
        codes.describe("CPT", "G0444")
    assert codes.code_set_versions() == {
        "ICD-10-CM": "FY2026-04",
        "CPT": "medcoder plain-language",
        "HCPCS": "medcoder plain-language",
        "ICD-11": "MMS 2024-01",
    }
    path = tmp_path / "licensed.csv"
    path.write_text("code,description\n99214,Licensed 99214\n99499,Licensed 99499\n", encoding="utf-8")
    codes.use_cpt_catalog(cpt.load_licensed_cpt(path))
    assert codes.describe("CPT", "99214") == "Licensed 99214"
    assert codes.is_valid_code("CPT", "99499")
    assert codes.code_set_versions()["CPT"].startswith("licensed licensed.csv sha256:")


def test_descriptions_are_also_read_in_the_wordings_the_code_set_gives_them():
    from medcoder.codes.terms import code_texts, description_wordings

    assert description_wordings("Acute nasopharyngitis [common cold]") == (
        "Acute nasopharyngitis [common cold]", "Acute nasopharyngitis", "common cold",
    )  # fmt: skip
    assert description_wordings("Malignant neoplasm of prostate") == (
        "Malignant neoplasm of prostate", "cancer of prostate",
    )  # fmt: skip
    # a bracket that abbreviates the last words takes their place: "E. coli" alone names an organism, not sepsis
    assert description_wordings("Sepsis due to Escherichia coli [E. coli]") == (
        "Sepsis due to Escherichia coli [E. coli]", "Sepsis due to Escherichia coli", "Sepsis due to E. coli",
    )  # fmt: skip
    # an explanatory bracket or an abbreviation is no wording of its own; the text without it still is
    assert description_wordings("Burn of second degree of scalp [any part]") == (
        "Burn of second degree of scalp [any part]", "Burn of second degree of scalp",
    )  # fmt: skip
    assert description_wordings("Idiopathic hypereosinophilic syndrome [IHES]") == (
        "Idiopathic hypereosinophilic syndrome [IHES]", "Idiopathic hypereosinophilic syndrome",
    )  # fmt: skip
    assert description_wordings("Essential (primary) hypertension") == ("Essential (primary) hypertension",)
    assert {"Acute nasopharyngitis", "common cold"} <= set(code_texts("ICD-10-CM", "J00"))
