"""Everyday shop-floor words that mean the same thing, in Italian and English.

Briefing authors write "TV", "warranty", "financing"; people at the counter say "televisore",
"guarantee", "a rate". A FAQ entry's ``keywords`` cover what is particular to one briefing;
this list covers the words every briefing shares, so no author has to repeat them. A query
word found here also matches the other words of its group, at a lower weight than the word
itself (see :mod:`bot.briefings.search`).

Each group lists words or short phrases per language; a phrase matches when its words follow
each other in the question (common words left out). Keep groups to real equivalents: a loose
group ("price", "deal", "offer") makes every question about money match every passage about
money. Words are kept per language because some are spelt alike and mean different things
(Italian "rate" are instalments, English "rate" is a speed).
"""

from __future__ import annotations

from functools import cache

from bot.briefings.words import stems

#: One group a line: ``English words | Italian words``, each comma-separated.
GROUPS = """
tv, television, telly, tv set | tv, televisore, televisione, tivù
laptop, notebook | portatile, notebook, pc portatile
phone, smartphone, mobile | telefono, cellulare, smartphone
screen, display, monitor, panel | schermo, display, monitor, pannello
soundbar, speaker, speakers | soundbar, altoparlante, altoparlanti
netflix, youtube, prime video, disney, streaming | netflix, youtube, prime video, disney, streaming
games, gaming, videogames, play | giochi, videogiochi, gaming, giocare
memory, ram | memoria, ram
storage, disk, hard disk, ssd | archiviazione, disco, ssd
keyboard, keys | tastiera, tasti
port, socket, input | porta, presa, ingresso
battery, battery life, autonomy, unplugged | batteria, autonomia, senza caricatore
charger, charging | caricatore, ricarica, alimentatore
weight, weigh, weighs, heavy | peso, pesa, pesante
broken, faulty, dead, damaged | rotto, guasto, difettoso, danneggiato
old, second-hand | vecchio, usato
switch on, turn on, power on | accendere, accendo, acceso, si accende
demo, display model, display unit, showroom | demo, esposizione, vetrina
buy, purchase, bought, purchased | comprare, acquistare, acquisto, comprato
on sale, available, in stock | in vendita, disponibile, esce, uscita
price, cost, costs | prezzo, costo, costa
cheaper, lower price | più basso, meno caro, costa meno
discount, money off, reduction | sconto, riduzione
instalments, installments, monthly payments, financing, finance | rate, rateale, finanziamento, a rate, mensile
pay, paid, payment | pagare, pagamento, pago
refund, money back, reimburse | rimborso, rimborsare, soldi indietro, rimborsa
deposit | acconto, caparra, anticipo
reserve, reservation, pre-order, preorder | prenotare, prenotazione, preordinare
receipt | scontrino, ricevuta
till, checkout, cash desk | cassa
coupon, voucher, promo code, discount code | coupon, buono, codice sconto
flash sale, lightning deal, deal of the day | offerta lampo, offerta del giorno
free, free of charge | gratis, gratuito, gratuita, gratuitamente
shop, store | negozio, punto vendita
website, site, online, internet, web | sito, online, internet, web
home, house | casa, domicilio
delivery, deliver, shipping, postage | consegna, spedizione
courier | corriere
competitor, competitors | concorrente, concorrenti, concorrenza
manager, boss | responsabile, direttore
approve, sign off, authorise, authorize | approvare, firmare, autorizzare
student, university | studente, università, universitario
warranty, guarantee, guaranteed | garanzia, garantito
cover, covered | copre, coperto, copertura
repair, fix | riparazione, riparare, aggiustare
installation, install | installazione, installare, montaggio
wall | muro, parete
photo, picture, screenshot | foto, fotografia, screenshot
"""


def _groups() -> list[dict[str, tuple[str, ...]]]:
    out = []
    for line in GROUPS.strip().splitlines():
        english, italian = line.split("|")
        out.append(
            {
                "en": tuple(w.strip() for w in english.split(",")),
                "it": tuple(w.strip() for w in italian.split(",")),
            }
        )
    return out


@cache
def synonym_stems(locale: str) -> tuple[tuple[tuple[str, ...], ...], ...]:
    """Each group as the stem sequences of its entries in ``locale`` (entries that are only
    common words are left out)."""
    out = []
    for group in _groups():
        entries = {tuple(stems(entry, locale)) for entry in group.get(locale, ())}
        out.append(tuple(sorted(e for e in entries if e)))
    return tuple(out)


def expansions(query_stems: list[str], locale: str) -> dict[str, set[str]]:
    """Per query stem, the stems it stands for through :data:`GROUPS` in ``locale`` (a phrase
    counts for its first word). A phrase of several words is only ever a trigger: its words
    alone ("money", "back") would stand for too much."""
    found: dict[str, set[str]] = {}
    for group in synonym_stems(locale):
        singles = {entry[0] for entry in group if len(entry) == 1}
        for entry in group:
            if _contains(query_stems, entry):
                found.setdefault(entry[0], set()).update(singles - {entry[0]})
    return found


def _contains(sequence: list[str], entry: tuple[str, ...]) -> bool:
    if len(entry) == 1:
        return entry[0] in sequence
    return any(
        tuple(sequence[i : i + len(entry)]) == entry for i in range(len(sequence) - len(entry) + 1)
    )
