"""The translation catalogues are complete and well-formed: no untranslated or fuzzy entry in
French and Arabic, every Tamazight string a public page or the public API shows, every ICU
placeholder kept, every Arabic plural form present (ICU ``plural`` arguments and gettext
plurals alike), and every machine code the API sends has a label. Arabic's six CLDR plural
categories: zero, one, two, few, many, other (CLDR plural rules, ``ar``)."""

from __future__ import annotations

import re
from typing import get_args

import pytest

from alerts.rules import (
    collection,
    day_burning,
    energy,
    idle,
    outage,
    route,
    silence,
    speeding,
    tracker,
)
from api.lightstatus import LightStatus
from api.open_data.feeds import FEEDS
from telemetry.alert_events import AlertState, Severity
from telemetry.complaints.matching import LinkState
from telemetry.complaints.services import SERVICES
from telemetry.contract import FAULT_NAMES
from telemetry.energy_accounting.reconcile import FlagCode, MeterSource
from telemetry.i18n import Locale, cldr_locale
from telemetry.i18n.catalogues import (
    PUBLIC_PAGES,
    catalogue,
    label,
    ngettext,
    page_messages,
    po_path,
    source,
    translate,
)

ARABIC_FORMS = {"zero", "one", "two", "few", "many", "other"}
TRANSLATED = (Locale.FR, Locale.AR, Locale.ZGH)
_PLURAL = re.compile(r"\{\s*(\w+)\s*,\s*plural\s*,")
_ARGUMENT = re.compile(r"\{\s*([a-z_]+)\s*[,}]")
_TIFINAGH = re.compile(r"[\u2D30-\u2D7F]")
_LATIN_WORD = re.compile(r"\b[A-Za-z]{4,}\b")


def plural_categories(message: str) -> list[set[str]]:
    """The categories of each ICU ``plural`` argument in ``message`` (a small brace parser)."""
    found = []
    for start in _PLURAL.finditer(message):
        depth, i, categories, selector = 1, start.end(), set(), ""
        while i < len(message) and depth > 0:
            char = message[i]
            if char == "{":
                if depth == 1:
                    categories.add(selector.strip())
                    selector = ""
                depth += 1
            elif char == "}":
                depth -= 1
            elif depth == 1:
                selector += char
            i += 1
        found.append(categories)
    return found


Text = str | tuple[str, ...]


def _text(value: object) -> Text:
    return tuple(str(v) for v in value) if isinstance(value, tuple | list) else str(value or "")


def _entries(locale: Locale) -> list[tuple[str | None, Text, Text, bool]]:
    """(context, id, translation, fuzzy): plural ids and translations as tuples."""
    return [(m.context, _text(m.id), _text(m.string), m.fuzzy) for m in catalogue(locale) if m.id]


@pytest.mark.parametrize("locale", TRANSLATED)
def test_every_catalogue_has_the_same_entries(locale: Locale) -> None:
    keys = {(c, i if isinstance(i, str) else i[0]) for c, i, _, _ in _entries(locale)}
    english = {(c, i if isinstance(i, str) else i[0]) for c, i, _, _ in _entries(Locale.FR)}
    assert keys == english and po_path(locale).is_file()


@pytest.mark.parametrize("locale", TRANSLATED)
def test_catalogues_pass_babels_checks(locale: Locale) -> None:
    # What ``pybabel compile`` checks: placeholders and plural forms.
    assert [(m.context, m.id, errors) for m, errors in catalogue(locale).check()] == []


@pytest.mark.parametrize("locale", [Locale.FR, Locale.AR])
def test_french_and_arabic_have_no_untranslated_or_fuzzy_entry(locale: Locale) -> None:
    missing = [(c, i) for c, i, s, fuzzy in _entries(locale) if fuzzy or not s or s == ("",)]
    missing += [(c, i) for c, i, s, _ in _entries(locale) if isinstance(s, tuple) and "" in s]
    assert missing == []


def test_tamazight_is_complete_for_the_public_pages_and_services() -> None:
    public = [(c, i, s) for c, i, s, _ in _entries(Locale.ZGH) if c and c.startswith(PUBLIC_PAGES)]
    assert len(public) > 80
    untranslated = [c for c, _, s, _ in ((c, i, s, 0) for c, i, s in public) if not s]
    assert untranslated == []
    # Written in Tifinagh, not left in Latin letters (units and codes such as kWh aside).
    latin = [c for c, i, s in public if isinstance(s, str) and not _TIFINAGH.search(s) and s != i]
    assert latin == []


@pytest.mark.parametrize("locale", TRANSLATED)
def test_translations_keep_every_placeholder(locale: Locale) -> None:
    for context, msgid, text, _ in _entries(locale):
        if not isinstance(msgid, str) or not isinstance(text, str) or not text:
            continue
        assert set(_ARGUMENT.findall(text)) == set(_ARGUMENT.findall(msgid)), (context, text)


def test_arabic_icu_plurals_have_all_six_forms() -> None:
    assert set(cldr_locale(Locale.AR).plural_form.tags) | {"other"} == ARABIC_FORMS
    plurals = 0
    for context, msgid, text, _ in _entries(Locale.AR):
        if not isinstance(text, str) or not isinstance(msgid, str):
            continue
        for categories in plural_categories(text):
            plurals += 1
            assert categories == ARABIC_FORMS, (context, categories)
    assert plurals >= 8


@pytest.mark.parametrize("locale", [Locale.FR, Locale.ZGH])
def test_other_icu_plurals_have_one_and_other(locale: Locale) -> None:
    for context, _, text, _ in _entries(locale):
        if isinstance(text, str):
            for categories in plural_categories(text):
                assert {"one", "other"} <= categories, (context, categories)


def test_arabic_gettext_plurals_have_six_forms_chosen_by_cldr_rules() -> None:
    arabic = catalogue(Locale.AR)
    assert arabic.num_plurals == 6
    plural = [s for _, i, s, _ in _entries(Locale.AR) if isinstance(i, tuple)]
    assert plural and all(len(forms) == 6 and all(forms) for forms in plural)
    # n = 0, 1, 2, 3..10, 11..99, 100..102: one example of each form (CLDR's examples).
    forms = {
        n: ngettext(Locale.AR, "retry in {n} second", "retry in {n} seconds", n)
        for n in (0, 1, 2, 5, 11, 100)
    }
    assert len(set(forms.values())) == 5  # many and other read alike in this sentence
    assert forms[1] == "أعد المحاولة بعد ثانية واحدة" and forms[2] == "أعد المحاولة بعد ثانيتين"
    assert forms[5] == "أعد المحاولة بعد {n} ثوان"


def test_every_machine_code_has_a_label_in_every_locale() -> None:
    kinds = {m.KIND for m in (collection, day_burning, energy, idle, route, speeding, tracker)} | {
        outage.CIRCUIT_OUTAGE,
        outage.DISTRICT_OUTAGE,
        silence.SILENT_LIGHT,
    }
    kinds |= {silence.VEHICLE_OFFLINE, *FAULT_NAMES}
    groups = {
        "kind": kinds,
        "severity": {s.value for s in Severity},
        "state": {s.value for s in AlertState},
        "light": {s.value for s in LightStatus},
        "link": {s.value for s in LinkState},
        "flag": {f.value for f in FlagCode},
        "meter_source": set(get_args(MeterSource)),
    }
    known = page_messages(Locale.EN, Locale.EN)
    for group, codes in groups.items():
        for code in codes:
            assert f"label.{group}.{code}" in known, (group, code)
            assert label(Locale.AR, group, code) != label(Locale.EN, group, code), (group, code)
    assert label(Locale.FR, "kind", "lampFailure") == "Lampe en panne"
    assert label(Locale.AR, "kind", "lampFailure") == "عطب في المصباح"


def test_every_service_and_feed_title_is_translated() -> None:
    for locale in TRANSLATED:
        for s in SERVICES:
            local = s.localised(locale)
            assert local.name != s.name and local.description != s.description
            assert local.notice != s.notice and local.code == s.code
        messages = page_messages(locale, locale)
        for feed in FEEDS:
            assert messages[f"feed.{feed.name}.title"] != feed.title


def test_every_open_data_column_has_a_label() -> None:
    for locale in TRANSLATED:
        labels = page_messages(locale, locale)
        for feed in FEEDS:
            for column in feed.columns:
                text = labels.get(f"transparency.column.{column.name}")
                assert text and (text != column.name or column.name in ("date", "km")), (
                    locale, feed.name, column.name
                )  # fmt: skip


def test_messages_produced_in_english_reach_users_translated() -> None:
    assert translate(Locale.FR, "no alert 42") == "aucune alerte 42"
    assert translate(Locale.AR, "complaint 7 is already closed") == "الشكاية 7 مغلقة من قبل"
    assert translate(Locale.FR, "an English sentence no catalogue has") == (
        "an English sentence no catalogue has"
    )
    assert translate(Locale.EN, "no alert 42") == "no alert 42"
    assert translate(Locale.ZGH, "no alert 42") == "aucune alerte 42"  # no Tamazight: French


def test_page_messages_fall_back_to_the_audience_default() -> None:
    zgh = page_messages(Locale.ZGH, Locale.FR)
    assert zgh["map.title"] == "Rasd — carte en direct"  # an operator page: French
    assert _TIFINAGH.search(zgh["transparency.heading"])
    english = page_messages(Locale.EN, Locale.EN)
    assert english["map.title"] == "Rasd — live map"
    assert set(english) == set(zgh) == set(page_messages(Locale.AR, Locale.AR))
    assert len(source()) > 200
