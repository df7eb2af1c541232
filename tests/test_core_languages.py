"""The language registry: every paper language by name and code, coverage, bad queries."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kakugo_core.errors import UnknownLanguageError
from kakugo_core.languages import registry, resolve

#: The Kakugo paper's 54 languages: (ISO code as the issue lists it, English name, FLORES id)
PAPER = [
    ("am", "Amharic", "amh_Ethi"), ("arz", "Egyptian Arabic", "arz_Arab"),
    ("ars", "Najdi Arabic", "ars_Arab"), ("as", "Assamese", "asm_Beng"),
    ("ast", "Asturian", "ast_Latn"), ("az", "North Azerbaijani", "azj_Latn"),
    ("ba", "Bashkir", "bak_Cyrl"), ("bn", "Bengali", "ben_Beng"),
    ("bo", "Standard Tibetan", "bod_Tibt"), ("ceb", "Cebuano", "ceb_Latn"),
    ("cv", "Chuvash", "chv_Cyrl"), ("cy", "Welsh", "cym_Latn"), ("fo", "Faroese", "fao_Latn"),
    ("ga", "Irish", "gle_Latn"), ("gd", "Scottish Gaelic", "gla_Latn"),
    ("gl", "Galician", "glg_Latn"), ("gn", "Guarani", "grn_Latn"), ("ha", "Hausa", "hau_Latn"),
    ("ht", "Haitian Creole", "hat_Latn"), ("ig", "Igbo", "ibo_Latn"),
    ("jv", "Javanese", "jav_Latn"), ("kmr", "Northern Kurdish", "kmr_Latn"),
    ("sdh", "Southern Kurdish", "sdh_Arab"), ("ky", "Kyrgyz", "kir_Cyrl"),
    ("lb", "Luxembourgish", "ltz_Latn"), ("lo", "Lao", "lao_Laoo"), ("lus", "Mizo", "lus_Latn"),
    ("mg", "Plateau Malagasy", "plt_Latn"), ("mi", "Maori", "mri_Latn"),
    ("mn", "Halh Mongolian", "khk_Cyrl"), ("mt", "Maltese", "mlt_Latn"),
    ("ny", "Nyanja", "nya_Latn"), ("oc", "Occitan", "oci_Latn"),
    ("pap", "Papiamento", "pap_Latn"), ("ps", "Southern Pashto", "pbt_Arab"),
    ("rn", "Rundi", "run_Latn"), ("rw", "Kinyarwanda", "kin_Latn"), ("sd", "Sindhi", "snd_Arab"),
    ("si", "Sinhala", "sin_Sinh"), ("sm", "Samoan", "smo_Latn"), ("sn", "Shona", "sna_Latn"),
    ("st", "Southern Sotho", "sot_Latn"), ("su", "Sundanese", "sun_Latn"),
    ("sw", "Swahili", "swh_Latn"), ("te", "Telugu", "tel_Telu"), ("tg", "Tajik", "tgk_Cyrl"),
    ("ti", "Tigrinya", "tir_Ethi"), ("tk", "Turkmen", "tuk_Latn"), ("tt", "Tatar", "tat_Cyrl"),
    ("ug", "Uyghur", "uig_Arab"), ("xh", "Xhosa", "xho_Latn"), ("yi", "Yiddish", "ydd_Hebr"),
    ("yo", "Yoruba", "yor_Latn"), ("zu", "Zulu", "zul_Latn"),
]
NOT_IN_FLORES = {"chv_Cyrl", "sdh_Arab"}


def test_paper_has_54_languages_all_flagged() -> None:
    assert len({flores for _, _, flores in PAPER}) == 54
    flagged = {lang.id for lang in registry() if lang.kakugo_paper}
    assert flagged == {flores for _, _, flores in PAPER}


@pytest.mark.parametrize(("code", "name", "flores"), PAPER)
def test_paper_language_resolves_by_name_and_codes(code: str, name: str, flores: str) -> None:
    lang = resolve(flores)
    assert resolve(code).id == flores
    assert resolve(lang.name).id == flores
    assert resolve(lang.iso639_3).id == flores
    assert resolve(flores.lower()).id == flores
    assert resolve(flores.replace("_", "-")).id == flores
    assert resolve(name).id == flores
    assert resolve(name.upper()).id == flores


@pytest.mark.parametrize(("code", "name", "flores"), PAPER)
def test_paper_language_coverage_is_honest(code: str, name: str, flores: str) -> None:
    lang = resolve(flores)
    if flores in NOT_IN_FLORES:
        assert all(v is None for v in lang.benchmarks.values())
    else:
        assert lang.benchmarks["sib200"] == flores
        assert lang.benchmarks["flores"] == flores


def test_common_queries() -> None:
    for query in ("Javanese", "javanese", " jv ", "jav", "jav_Latn", "JAV_LATN", "Basa Jawa"):
        assert resolve(query).id == "jav_Latn"
    assert resolve("Swahili").benchmarks["global_mmlu"] == "sw"
    assert resolve("Kyrgyz").benchmarks["global_mmlu"] == "ky"
    assert resolve("Javanese").benchmarks["global_mmlu"] is None
    assert resolve("zh").id == "zho_Hans"
    assert resolve("ar").id == "arb_Arab"


def test_registry_is_complete_and_consistent() -> None:
    langs = list(registry())
    flores_ids = [lang.id for lang in langs if lang.benchmarks["flores"]]
    assert len(flores_ids) == 206  # FLORES-200's 204, and nqo_Nkoo and gom_Deva from FLORES+
    assert len({lang.benchmarks["sib200"] for lang in langs} - {None}) == 205
    assert len({lang.id for lang in langs}) == len(langs)
    mmlu = {lang.benchmarks["global_mmlu"] for lang in langs} - {None}
    assert len(mmlu) == 42
    belebele = {lang.benchmarks["belebele"] for lang in langs} - {None}
    assert len(belebele) == 122


LISTS = Path(__file__).parent / "fixtures" / "benchmark_languages"


def _configs(name: str) -> list[str]:
    """The language configs of a benchmark as its source publishes them (see each file's note)."""
    lines = (LISTS / f"{name}.txt").read_text("utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


@pytest.mark.parametrize(("benchmark", "count"),
                         [("sib200", 205), ("belebele", 122), ("global_mmlu", 42)])
def test_every_config_of_a_benchmark_resolves_with_its_coverage(benchmark: str,
                                                                 count: int) -> None:
    configs = _configs(benchmark)
    assert len(set(configs)) == count
    for config in configs:
        lang = resolve(config)
        assert lang.benchmarks[benchmark] == config, (config, lang.id)
    covered = {lang.benchmarks[benchmark] for lang in registry()} - {None}
    assert covered == set(configs)


def test_sib200_nko_resolves_by_name_code_and_id() -> None:
    for query in ("nqo_Nkoo", "nqo", "N'Ko", "NQO_NKOO", "nqo-Nkoo"):
        lang = resolve(query)
        assert lang.id == "nqo_Nkoo"
    assert lang.benchmarks == {"sib200": "nqo_Nkoo", "belebele": None, "global_mmlu": None,
                               "flores": "nqo_Nkoo"}


def test_every_flores_plus_id_resolves() -> None:
    """FLORES+ relabelled some FLORES-200 ids and added languages: every id of its list finds
    a language; the FLORES-200 id of a relabelled one stays the registry's id."""
    configs = _configs("flores_plus")
    assert len(configs) == 215
    for config in configs:
        resolve(config)
    assert resolve("ekk_Latn").id == "est_Latn" and resolve("cmn_Hans").id == "zho_Hans"
    assert resolve("apc_Arab_sout3123").id == "ajp_Arab"
    assert resolve("mhr_Cyrl").benchmarks["flores"] is None  # dev split only


@pytest.mark.parametrize("query", ["Klingon", "xx", "", "jav_Xxxx", "Javanes"])
def test_unknown_language_is_a_clear_error(query: str) -> None:
    with pytest.raises(UnknownLanguageError, match="unknown language"):
        resolve(query)


def test_close_matches_are_suggested() -> None:
    with pytest.raises(UnknownLanguageError, match=r"Javanese \(jav_Latn\)"):
        resolve("Javanes")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kakugo_core", *args],
                          capture_output=True, text=True)


def test_cli_json_gives_id_and_coverage() -> None:
    result = _cli("languages", "Javanese", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["id"] == "jav_Latn"
    assert data["benchmarks"] == {"sib200": "jav_Latn", "belebele": "jav_Latn",
                                  "global_mmlu": None, "flores": "jav_Latn"}


def test_cli_table_reports_missing_coverage() -> None:
    result = _cli("languages", "Chuvash")
    assert result.returncode == 0
    assert "Chuvash is not covered by: sib200, belebele, global_mmlu, flores" in result.stdout


def test_cli_unknown_language_exits_non_zero_in_one_line() -> None:
    result = _cli("languages", "Klingonese")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "unknown language 'Klingonese'" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_lists_paper_languages() -> None:
    result = _cli("languages", "--paper", "--json")
    assert len(json.loads(result.stdout)) == 54
