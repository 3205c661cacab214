"""A printable dispute summary of one flagged cabinet month, in French or Arabic (pure): the
bill, what was measured and modelled, each finding in a sentence with its figures, and the
request to the distributor. A self-contained HTML page (print it, or save it as PDF).
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from typing import Final, Literal

from telemetry.energy_accounting.reconcile import CabinetMonth, Evidence, Flag, FlagCode

Language = Literal["fr", "ar"]


def number(value: float | int | None, digits: int = 0) -> str:
    """A figure as the bills print it: thin-space thousands, decimal comma (— when unknown)."""
    if value is None:
        return "—"
    text = f"{value:,.{digits}f}".replace(",", "\u202f").replace(".", ",")
    return text


def _n(e: Evidence, key: str, digits: int = 0) -> str:
    value = e.get(key)
    return number(value if isinstance(value, int | float) else None, digits)


def _list(e: Evidence, key: str) -> str:
    value = e.get(key)
    return ", ".join(str(v) for v in value) if isinstance(value, list) else "—"


def _count(e: Evidence, key: str) -> str:
    value = e.get(key)
    return str(len(value)) if isinstance(value, list) else "—"


_Sentence = Callable[[Evidence], str]

_FINDINGS: Final[dict[Language, dict[FlagCode, _Sentence]]] = {
    "fr": {
        FlagCode.BILLED_VS_METERED: lambda e: (
            f"L'énergie facturée ({_n(e, 'billed_kwh')} kWh) s'écarte de {_n(e, 'gap_pct', 1)} % "
            f"de l'énergie mesurée par nos compteurs sur la même période "
            f"({_n(e, 'metered_kwh')} kWh), soit {_n(e, 'gap_dh', 2)} DH."
        ),
        FlagCode.ESTIMATED_BILL: lambda e: (
            "Cette facture repose sur une estimation et non sur un relevé du compteur ; "
            f"l'énergie mesurée sur la période est de {_n(e, 'metered_kwh')} kWh "
            f"(écart de {_n(e, 'gap_kwh')} kWh, {_n(e, 'gap_dh', 2)} DH)."
        ),
        FlagCode.FLAT_RATE_BILL: lambda e: (
            f"La même consommation est facturée {_count(e, 'periods')} périodes de suite "
            f"({_list(e, 'billed_kwh')} kWh), alors que la durée des nuits la fait varier "
            "chaque mois."
        ),
        FlagCode.UNMETERED_LOAD: lambda e: (
            f"Le compteur de l'armoire enregistre {_n(e, 'excess_kwh')} kWh de plus que les "
            "compteurs de ses luminaires et les pertes en ligne : branchement illicite ou "
            "charge non répertoriée."
        ),
        FlagCode.DARK_CIRCUIT: lambda e: (
            f"Circuit(s) {_list(e, 'circuits')} : énergie mesurée ({_list(e, 'metered_kwh')} "
            f"kWh) inférieure à la moitié de l'énergie modélisée ({_list(e, 'modelled_kwh')} "
            "kWh) : circuit éteint."
        ),
        FlagCode.DAY_BURNING_ENERGY: lambda e: (
            f"{_n(e, 'day_kwh')} kWh consommés en plein jour sur {_n(e, 'day_hours')} heures "
            f"({_n(e, 'day_dh', 2)} DH)."
        ),
        FlagCode.OVER_CONTRACTED_POWER: lambda e: (
            f"Puissance souscrite de {_n(e, 'contracted_kw', 1)} kW pour une pointe mesurée de "
            f"{_n(e, 'peak_kw', 1)} kW : {_n(e, 'suggested_kw', 1)} kW suffisent "
            f"({_n(e, 'yearly_saving_dh', 2)} DH par an)."
        ),
        FlagCode.TARIFF_MISMATCH: lambda e: (
            f"Montant facturé {_n(e, 'billed_dh', 2)} DH ; le tarif {e.get('tariff') or '—'} "
            f"donne {_n(e, 'recomputed_dh', 2)} DH (écart de {_n(e, 'difference_dh', 2)} DH)."
        ),
    },
    "ar": {
        FlagCode.BILLED_VS_METERED: lambda e: (
            f"تختلف الطاقة المفوترة ({_n(e, 'billed_kwh')} ك.و.س) بنسبة {_n(e, 'gap_pct', 1)} % "
            f"عن الطاقة التي قاستها عداداتنا خلال نفس الفترة ({_n(e, 'metered_kwh')} ك.و.س)، "
            f"أي {_n(e, 'gap_dh', 2)} درهم."
        ),
        FlagCode.ESTIMATED_BILL: lambda e: (
            "تستند هذه الفاتورة إلى تقدير وليس إلى قراءة العداد؛ الطاقة المقيسة خلال الفترة هي "
            f"{_n(e, 'metered_kwh')} ك.و.س (فارق {_n(e, 'gap_kwh')} ك.و.س، "
            f"{_n(e, 'gap_dh', 2)} درهم)."
        ),
        FlagCode.FLAT_RATE_BILL: lambda e: (
            f"تمت فوترة نفس الاستهلاك خلال {_count(e, 'periods')} فترات متتالية "
            f"({_list(e, 'billed_kwh')} ك.و.س)، بينما يتغير الاستهلاك كل شهر بتغير طول الليالي."
        ),
        FlagCode.UNMETERED_LOAD: lambda e: (
            f"يسجل عداد الخزانة {_n(e, 'excess_kwh')} ك.و.س أكثر من عدادات مصابيحها وضياع "
            "الخطوط: ربط غير قانوني أو حمولة غير مسجلة."
        ),
        FlagCode.DARK_CIRCUIT: lambda e: (
            f"الدارات {_list(e, 'circuits')}: الطاقة المقيسة ({_list(e, 'metered_kwh')} ك.و.س) "
            f"أقل من نصف الطاقة المقدرة ({_list(e, 'modelled_kwh')} ك.و.س): دارة مطفأة."
        ),
        FlagCode.DAY_BURNING_ENERGY: lambda e: (
            f"استُهلك {_n(e, 'day_kwh')} ك.و.س في وضح النهار خلال {_n(e, 'day_hours')} ساعة "
            f"({_n(e, 'day_dh', 2)} درهم)."
        ),
        FlagCode.OVER_CONTRACTED_POWER: lambda e: (
            f"القدرة المكتتبة {_n(e, 'contracted_kw', 1)} ك.و لذروة مقيسة تبلغ "
            f"{_n(e, 'peak_kw', 1)} ك.و: تكفي قدرة {_n(e, 'suggested_kw', 1)} ك.و "
            f"({_n(e, 'yearly_saving_dh', 2)} درهم في السنة)."
        ),
        FlagCode.TARIFF_MISMATCH: lambda e: (
            f"المبلغ المفوتر {_n(e, 'billed_dh', 2)} درهم؛ تعريفة {e.get('tariff') or '—'} "
            f"تعطي {_n(e, 'recomputed_dh', 2)} درهم (فارق {_n(e, 'difference_dh', 2)} درهم)."
        ),
    },
}

_TEXT: Final[dict[Language, dict[str, str]]] = {
    "fr": {
        "title": "Réclamation : facture d'électricité de l'éclairage public",
        "month": "Mois",
        "meter": "Compteur / contrat",
        "cabinet": "Armoire",
        "district": "Arrondissement",
        "bill": "Facture",
        "period": "Période",
        "billed": "Énergie facturée",
        "amount": "Montant facturé (TTC)",
        "estimated": "Facture estimée",
        "measured": "Énergie mesurée sur la période",
        "modelled": "Énergie modélisée du mois (inventaire × gradation × horloge astronomique)",
        "recomputed": "Montant recalculé selon le tarif",
        "findings": "Constats",
        "request": (
            "Nous vous prions de bien vouloir vérifier cette facture et, le cas échéant, de "
            "procéder à sa régularisation. Les mesures détaillées, heure par heure, sont à votre "
            "disposition."
        ),
        "yes": "oui",
        "no": "non",
        "source": "Établi par Rasd à partir des compteurs, de l'inventaire et du tarif",
    },
    "ar": {
        "title": "شكاية: فاتورة كهرباء الإنارة العمومية",
        "month": "الشهر",
        "meter": "العداد / العقد",
        "cabinet": "الخزانة",
        "district": "المقاطعة",
        "bill": "الفاتورة",
        "period": "الفترة",
        "billed": "الطاقة المفوترة",
        "amount": "المبلغ المفوتر (مع احتساب الرسوم)",
        "estimated": "فاتورة تقديرية",
        "measured": "الطاقة المقيسة خلال الفترة",
        "modelled": "الطاقة المقدرة للشهر (الجرد × التخفيت × الساعة الفلكية)",
        "recomputed": "المبلغ المعاد حسابه وفق التعريفة",
        "findings": "المعاينات",
        "request": (
            "نرجو منكم التحقق من هذه الفاتورة وتسويتها عند الاقتضاء. القياسات المفصلة، ساعة "
            "بساعة، رهن إشارتكم."
        ),
        "yes": "نعم",
        "no": "لا",
        "source": "أعده رصد انطلاقا من العدادات والجرد والتعريفة",
    },
}

_UNIT: Final[dict[Language, dict[str, str]]] = {
    "fr": {"kwh": "kWh", "dh": "DH"},
    "ar": {"kwh": "ك.و.س", "dh": "درهم"},
}

#: The page's style; api/static/dispute.css holds the same for the API's served copy.
STYLE: Final = """
body { font-family: "Noto Sans", "Noto Naskh Arabic", Arial, sans-serif; margin: 2rem;
       max-width: 48rem; color: #111; }
h1 { font-size: 1.3rem; }
table { border-collapse: collapse; width: 100%; margin: 1rem 0; }
th, td { border: 1px solid #999; padding: 0.3rem 0.5rem; text-align: start; }
th { background: #eee; width: 55%; }
footer { margin-top: 2rem; font-size: 0.8rem; color: #555; }
@media print { body { margin: 1cm; } }
"""


def finding(flag: Flag, language: Language) -> str:
    """One finding as a sentence of ``language`` with its figures."""
    return _FINDINGS[language][flag.code](flag.evidence)


def render_dispute(row: CabinetMonth, language: Language, *, stylesheet: str | None = None) -> str:
    """The printable summary of ``row`` (a reconciled cabinet month) in ``language``; its
    style inline, or from ``stylesheet`` (a URL: pages served under a Content-Security-Policy
    take no inline style)."""
    t = _TEXT[language]
    u = _UNIT[language]
    direction = "rtl" if language == "ar" else "ltr"
    period = (
        f"{row.bill_period_start} → {row.bill_period_end}"
        if row.bill_period_start and row.bill_period_end
        else "—"
    )
    estimated = (
        None if row.bill_estimated is None else (t["yes"] if row.bill_estimated else t["no"])
    )
    lines = [
        (t["month"], f"{row.month:%Y-%m}"),
        (t["meter"], row.meter_id or "—"),
        (t["cabinet"], row.cabinet_id),
        (t["district"], row.district or "—"),
        (t["bill"], row.bill_number or "—"),
        (t["period"], period),
        (t["billed"], f"{number(row.billed_kwh)} {u['kwh']}"),
        (t["amount"], f"{number(row.billed_dh, 2)} {u['dh']}"),
        (t["estimated"], estimated or "—"),
        (t["measured"], f"{number(row.bill_metered_kwh)} {u['kwh']}"),
        (t["modelled"], f"{number(row.modelled_kwh)} {u['kwh']}"),
        (t["recomputed"], f"{number(row.recomputed_dh, 2)} {u['dh']}"),
    ]
    rows = "\n".join(
        f'<tr><th scope="row">{escape(k)}</th><td dir="auto">{escape(v)}</td></tr>'
        for k, v in lines
    )
    findings = "\n".join(
        f'<li data-code="{f.code.value}">{escape(finding(f, language))}</li>' for f in row.flags
    )
    style = (
        f'<link rel="stylesheet" href="{escape(stylesheet)}">'
        if stylesheet is not None
        else f"<style>{STYLE}</style>"
    )
    return f"""<!DOCTYPE html>
<html lang="{language}" dir="{direction}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(t["title"])} — {escape(row.meter_id or row.cabinet_id)}</title>
{style}
</head>
<body>
<h1>{escape(t["title"])}</h1>
<table>
{rows}
</table>
<h2>{escape(t["findings"])}</h2>
<ul>
{findings}
</ul>
<p>{escape(t["request"])}</p>
<footer>{escape(t["source"])}</footer>
</body>
</html>
"""
