"""The generated-file phrases are found in one Hyperscan pass, with the plain substring search's answer."""

from __future__ import annotations

import os
import sysconfig

from transforms.cleaning.quality_checks import GENERATED_PHRASES, generated_by, generator_phrases


def first_phrase_in(text: str, phrases) -> tuple[str, str] | None:
    """The definition: the first (generator, phrase) in list order whose phrase occurs in the text."""
    return next(((g, p) for g, p in phrases if p in text), None)


def test_the_first_phrase_in_list_order_wins_wherever_it_occurs():
    django, protoc = GENERATED_PHRASES[2][1], GENERATED_PHRASES[0][1]
    text = f"# {django}4.2\n" + "x = 1\n" * 100 + f"# {protoc}\n"
    assert generated_by(text) == ("protoc", protoc)  # later in the text, earlier in the list
    assert generated_by("x = 1\n") is None


def test_configured_phrases_count_and_non_ascii_text_and_phrases_are_found():
    phrases = generator_phrases(("Erzeugt von générateur", "@generated"))
    assert generated_by("# Erzeugt von générateur ✓\n", phrases) == ("configured", "Erzeugt von générateur")
    assert generated_by("s = 'é\udcff' # @generated\n", phrases) == ("configured", "@generated")
    assert generated_by("# Erzeugt von generateur\n", phrases) is None  # e is not é


def test_it_agrees_with_the_substring_search_on_installed_code():
    root = os.path.join(sysconfig.get_paths()["purelib"], "google", "protobuf")
    phrases = generator_phrases(("def ", "import"))
    checked = 0
    for dirpath, _, names in os.walk(root):
        for name in sorted(names):
            if name.endswith(".py"):
                with open(os.path.join(dirpath, name), encoding="utf-8", errors="replace") as f:
                    text = f.read()
                assert generated_by(text, phrases) == first_phrase_in(text, phrases), name
                checked += 1
    assert checked > 50
