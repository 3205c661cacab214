"""The gettext catalogues (``locales/<locale>/LC_MESSAGES/rasd.po``), compiled in memory with
Babel when first used: no build step, and the ``.po`` files stay the one source of truth for the
server's strings and the pages' messages alike.

Entries come in three kinds, told apart by their ``msgctxt``:

* no context: a server sentence, looked up by its English text (``gettext``, ``ngettext``); an
  English text with ``{name}`` fields is also a *template* that a produced message is matched
  against (``translate``), so an error raised in English anywhere reaches the user translated;
* ``label.<group>.<code>``: the human label of a machine code (alert kinds, faults, states);
* ``<page>.<key>``: a page message in ICU MessageFormat, sent to the pages as JSON.
"""

from __future__ import annotations

import functools
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

from telemetry.i18n import Locale

DOMAIN: Final = "rasd"
LOCALES_DIR: Final = Path(__file__).resolve().parent / "locales"
#: Page message prefixes: the pages' own (the public ones need Tamazight) and the labels.
PUBLIC_PAGES: Final = ("transparency", "public", "lang", "feed", "service", "stop")
OPERATOR_PAGES: Final = ("common", "map", "crew", "complaints", "maintenance", "energy")
LABELS: Final = "label"
_FIELD: Final = re.compile(r"\{([a-z_]+)\}")


def po_path(locale: Locale) -> Path:
    """Where a locale's catalogue lives (English is the source: it has none)."""
    return LOCALES_DIR / locale.babel_id / "LC_MESSAGES" / f"{DOMAIN}.po"


@functools.cache
def catalogue(locale: Locale) -> Catalog:
    """A locale's parsed ``.po`` catalogue (English: an empty one)."""
    if locale is Locale.EN:
        return Catalog(locale="en", domain=DOMAIN)
    with po_path(locale).open("rb") as handle:
        return read_po(handle, locale=locale.babel_id, domain=DOMAIN)


@functools.cache
def source() -> Catalog:
    """The English source texts: the French catalogue's ids (every catalogue has the same)."""
    return catalogue(Locale.FR)


@functools.cache
def translations(locale: Locale) -> NullTranslations:
    """A locale's catalogue compiled to gettext's ``.mo`` form in memory (fuzzy entries are
    left out, as ``msgfmt`` does); Tamazight falls back to French."""
    if locale is Locale.EN:
        return NullTranslations()
    buffer = io.BytesIO()
    write_mo(buffer, catalogue(locale), use_fuzzy=False)
    buffer.seek(0)
    compiled = Translations(buffer, domain=DOMAIN)
    if locale is Locale.ZGH:
        # Operators' sentences without Tamazight (errors, labels) read in French, as the
        # operator pages do; every public string has its Tamazight.
        compiled.add_fallback(translations(Locale.FR))
    return compiled


def gettext(locale: Locale, text: str) -> str:
    """``text`` (an English source sentence) in ``locale``; itself when not translated."""
    return translations(locale).gettext(text)


def ngettext(locale: Locale, singular: str, plural: str, count: int) -> str:
    """The form of a plural sentence for ``count`` (Arabic has six)."""
    return translations(locale).ngettext(singular, plural, count)


def pgettext(locale: Locale, context: str, text: str) -> str:
    """``text`` in ``locale``, in a context (a service's name, a label)."""
    return str(translations(locale).pgettext(context, text))


def contextual(locale: Locale, context: str, default: str) -> str:
    """The entry of ``context`` in ``locale`` (its English source for ``en``), whatever its
    English text; ``default`` when no catalogue has the context."""
    english = _by_context(Locale.FR).get(context)
    if english is None:
        return default
    return pgettext(locale, context, english[0])


def label(locale: Locale, group: str, code: str) -> str:
    """The human label of a machine code (``label("kind", "lampFailure")`` -> « Lampe en
    panne »); the code itself when no catalogue knows it."""
    return contextual(locale, f"{LABELS}.{group}.{code}", code)


@functools.cache
def _by_context(locale: Locale) -> dict[str, tuple[str, str]]:
    out: dict[str, tuple[str, str]] = {}
    for message in catalogue(locale):
        if message.id and message.context and isinstance(message.id, str):
            text = message.string if isinstance(message.string, str) else ""
            out[message.context] = (message.id, "" if message.fuzzy else text)
    return out


def page_messages(locale: Locale, fallback: Locale) -> dict[str, str]:
    """Every page message and label (ICU MessageFormat), keyed by context: the locale's, else
    ``fallback``'s, else the English source."""
    english = _by_context(Locale.FR)
    own = {} if locale is Locale.EN else _by_context(locale)
    spare = {} if fallback is Locale.EN else _by_context(fallback)
    out: dict[str, str] = {}
    for context, (msgid, _) in english.items():
        if not context.startswith((*PUBLIC_PAGES, *OPERATOR_PAGES, LABELS)):
            continue
        if "." not in context:
            continue
        out[context] = own.get(context, ("", ""))[1] or spare.get(context, ("", ""))[1] or msgid
    return out


@dataclass(frozen=True, slots=True)
class _Template:
    pattern: re.Pattern[str]
    msgid: str


@functools.cache
def _templates() -> tuple[_Template, ...]:
    out = []
    for message in source():
        msgid = message.id
        if message.context or not isinstance(msgid, str) or "{" not in msgid:
            continue
        pieces = _FIELD.split(msgid)
        regex = "".join(
            re.escape(piece) if i % 2 == 0 else f"(?P<{piece}>.+?)"
            for i, piece in enumerate(pieces)
        )
        out.append(_Template(re.compile(f"^{regex}$", re.DOTALL), msgid))
    # The most specific template first: "{name}: longer than {limit} characters" before the
    # catch-all "{where}: {message}".
    out.sort(key=lambda t: -len(_FIELD.sub("", t.msgid)))
    return tuple(out)


def _fill(template: str, fields: dict[str, str]) -> str:
    return _FIELD.sub(lambda m: fields.get(m.group(1)) or m.group(0), template)


def translate(locale: Locale, text: str) -> str:
    """A message produced in English, in ``locale``: an exact catalogue sentence, or one built
    from a ``{field}`` template (the fields kept as produced); else unchanged."""
    if locale is Locale.EN or not text:
        return text
    exact = gettext(locale, text)
    if exact != text:
        return exact
    for template in _templates():
        found = template.pattern.match(text)
        if found is None:
            continue
        translated = gettext(locale, template.msgid)
        if translated == template.msgid:
            return text
        return _fill(translated, found.groupdict())
    return text
