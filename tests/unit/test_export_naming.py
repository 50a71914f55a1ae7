"""Names an export writes: human names, VBench names, WebDataset keys (plain functions)."""

from __future__ import annotations

import re
import unicodedata

import pytest

from pipeline.export.naming import (
    MAX_NAME_BYTES,
    cut_to_bytes,
    human_name,
    human_stem,
    unique_names,
    vbench_file_name,
    vbench_name_problem,
    webdataset_key,
)
from pipeline.export.source import clip_ext

WINDOWS_REFUSED = re.compile(r'[/\\:*?"<>|\x00-\x1f\x7f]')


def test_the_seed_documents_example():
    name = human_name("anime, cute rat running in a forest", 3048053658270753, "mp4")
    assert name == "anime,_cute_rat_running_in_a_forest_seed3048053658270753.mp4"


@pytest.mark.parametrize(
    ("prompt", "stem"),
    [
        ("<script>alert('x')</script>", "script_alert('x')__script"),
        ('a/b\\c:d*e?f"g<h>i|j', "a_b_c_d_e_f_g_h_i_j"),
        ("  ..hidden file..  ", "hidden_file"),
        ("tab\there\nnewline\x00nul\x1bescape", "tab_here_newline_nul_escape"),
        ("evil\u202egpj.exe", "evil_gpj.exe"),  # RTL override: shown reversed otherwise
        ("zero\u200bwidth\ufeffmarks", "zero_width_marks"),
        ("line\u2028separator", "line_separator"),
        ("no\u00a0break\u3000spaces", "no_break_spaces"),
        ("שלום עולם", "שלום_עולם"),  # right-to-left text itself is fine
        ("👩‍🚀 astronaut", "👩‍🚀_astronaut"),  # the joiner inside the emoji is kept
        ("...", "untitled"),
        ("   ", "untitled"),
        ("", "untitled"),
        ("???", "untitled"),
        ("CON", "CON_"),
        ("con.txt", "con.txt_"),
        ("lpt1", "lpt1_"),
        ("Com3 ", "Com3_"),
        ("console", "console"),
    ],
)
def test_human_stem_rules(prompt, stem):
    assert human_stem(prompt) == stem
    assert not WINDOWS_REFUSED.search(stem)
    assert stem[0] not in " ._" and stem[-1] not in " ."


def test_nfc_and_nfd_spellings_give_one_name():
    nfc, nfd = "café crème", unicodedata.normalize("NFD", "café crème")
    assert nfc != nfd
    assert human_stem(nfc) == human_stem(nfd) == unicodedata.normalize("NFC", "café_crème")


@pytest.mark.parametrize("budget", range(1, 40))
def test_cut_keeps_whole_characters_and_sequences(budget):
    text = "e\u0301" * 3 + "👩‍🚀🇯🇵🇫🇷" + "東京" + "\U0001f44d\U0001f3fd"
    cut = cut_to_bytes(text, budget)
    assert len(cut.encode("utf-8")) <= budget
    assert text.startswith(cut)
    rest = text[len(cut) :]
    if rest:  # the cut never separates a mark or a skin tone from its base ...
        assert unicodedata.category(rest[0]) not in ("Mn", "Me")
        assert not "\U0001f3fb" <= rest[0] <= "\U0001f3ff"
    assert not cut.endswith("\u200d")  # ... nor leaves a dangling joiner ...
    flags = [c for c in cut if "\U0001f1e6" <= c <= "\U0001f1ff"]
    assert len(flags) % 2 == 0  # ... nor half a flag


def test_long_prompts_fit_every_file_system():
    prompt = "ü" * 500 + "🎬" * 300
    name = human_name(prompt, 2**64 - 1, "png.tar")
    assert len(name.encode("utf-8")) <= MAX_NAME_BYTES
    assert len(human_stem(prompt, 50).encode()) <= 50


def test_collisions_get_a_suffix_ignoring_case():
    names = ["Cat_seed7.mp4", "cat_seed7.mp4", "Cat_seed7.mp4", "dog_seed7.mp4"]
    unique = unique_names(names, ["a", "b", "c", "d"])
    assert unique[0] == "Cat_seed7.mp4" and unique[3] == "dog_seed7.mp4"
    assert re.fullmatch(r"cat_seed7_[0-9a-f]{6}\.mp4", unique[1])
    assert re.fullmatch(r"Cat_seed7_[0-9a-f]{6}\.mp4", unique[2])
    assert len({n.casefold() for n in unique}) == 4
    assert unique_names(names, ["a", "b", "c", "d"]) == unique  # stable: suffix from the id


def test_vbench_names_are_verbatim_and_refused_when_impossible():
    assert vbench_file_name("A 3D model of a 1800s victorian house.", 4, "mp4") == (
        "A 3D model of a 1800s victorian house.-4.mp4"
    )
    assert vbench_name_problem("a, b. <c> 東京", 0, "mp4") is None
    assert "'/'" in vbench_name_problem("</script>", 0, "mp4")
    assert "NUL" in vbench_name_problem("a\x00b", 0, "mp4")
    assert "empty" in vbench_name_problem("", 0, "mp4")
    assert "not text" in vbench_name_problem(None, 0, "mp4")
    assert "byte" in vbench_name_problem("é" * 126, 0, "mp4")  # 252 + "-0.mp4" > 255
    assert vbench_name_problem("é" * 124, 0, "mp4") is None


def test_webdataset_keys_have_no_dot_and_sort_in_order():
    keys = [webdataset_key(i) for i in (0, 9, 10, 999_999_999, 1_000_000_000)]
    assert all(re.fullmatch(r"[0-9]+", key) for key in keys)
    assert keys[:4] == sorted(keys[:4])


def test_clip_extension_is_whatever_follows_the_key():
    assert clip_ext("ab12", "s3://b/run/clips/ab/ab12.mp4") == "mp4"
    assert clip_ext("ab12", "/r/clips/ab/ab12.webm") == "webm"
    assert clip_ext("ab12", "file:///r/clips/ab/ab12.png.tar") == "png.tar"
