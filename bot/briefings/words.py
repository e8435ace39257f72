"""Words for ``ask``: split a text into the stems that search compares, per language.

A word is lower-cased, stemmed by the Snowball stemmer of its language (``snowballstemmer``,
the maintained pure-Python build of the Snowball algorithms) and then stripped of accents, so
"università" and "universita", "vendita" and "venduto", "warranty" and "warranties" meet.
Stemming happens before folding because the Italian stemmer knows its accented endings.
Common words of both languages (articles, pronouns, auxiliaries, question words) are dropped:
they say nothing about which passage answers.

:func:`near` is the typo tolerance: a bounded edit distance between two words.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache

import snowballstemmer

#: Snowball algorithm per supported locale.
ALGORITHMS = {"en": "english", "it": "italian"}

# The Snowball stop-word lists of the two languages (snowballstem.org), with modal verbs,
# contractions, and the words that frame a question at the counter ("a customer asks if...",
# "il cliente vuole sapere se...") without saying what it is about.
_ENGLISH = """i me my myself we our ours ourselves you your yours yourself yourselves he him his
    himself she her hers herself it its itself they them their theirs themselves what which who
    whom this that these those am is are was were be been being have has had having do does did
    doing would should could ought a an the and but if or because as until while of at by for
    with about against between into through during above below to from up down in out on over
    under again further then once here there when where why how all any both each few more most
    other some such no nor not only own so than too very can will just don doesn didn isn aren
    wasn weren won wouldn shouldn couldn can't let ll re ve s t d m now also anything please
    really get gets got getting ok okay hi hello thanks tell know say says ask asks asked want
    wants wanted customer customers client someone somebody something""".split()
_ITALIAN = """ad al allo ai agli all agl alla alle con col coi da dal dallo dai dagli dall dagl
    dalla dalle di del dello dei degli dell degl della delle in nel nello nei negli nell negl
    nella nelle su sul sullo sui sugli sull sugl sulla sulle per tra contro io tu lui lei noi voi
    loro mio mia miei mie tuo tua tuoi tue suo sua suoi sue nostro nostra nostri nostre vostro
    vostra vostri vostre mi ti ci vi lo la li le gli ne il un uno una ma ed se perché anche come
    dov dove che chi cui non più quale quanto quanti quanta quante quello quelli quella quelle
    questo questi questa queste si tutto tutti a c e i l o ho hai ha abbiamo avete hanno abbia
    abbiate abbiano avrò avrai avrà avremo avrete avranno avrei avresti avrebbe avremmo avreste
    avrebbero avevo avevi aveva avevamo avevate avevano ebbi avesti ebbe avemmo aveste ebbero
    avessi avesse avessimo avessero avendo avuto avuta avuti avute sono sei è siamo siete sia
    siate siano sarò sarai sarà saremo sarete saranno sarei saresti sarebbe saremmo sareste
    sarebbero ero eri era eravamo eravate erano fui fosti fu fummo foste furono fossi fosse
    fossimo fossero essendo faccio fai facciamo fanno faccia facciate facciano farò farai farà
    faremo farete faranno farei faresti farebbe faremmo fareste farebbero facevo facevi faceva
    facevamo facevate facevano feci facesti fece facemmo faceste fecero facessi facesse
    facessimo facessero facendo sto stai sta stiamo stanno stia stiate stiano starò starai starà
    staremo starete staranno starei staresti starebbe staremmo stareste starebbero stavo stavi
    stava stavamo stavate stavano stetti stesti stette stemmo steste stettero stessi stesse
    stessimo stessero stando ce po poi qui qua ecco cioè oppure però quando qual fino posso
    puoi può possiamo potete possono devo devi deve dobbiamo dovete devono va vanno qualcosa
    qualche qualcuno vuole vogliono sapere dice chiede chiedono cliente clienti signora signore
    ciao salve buongiorno grazie""".split()


def fold(text: str) -> str:
    """Lower case without accents (NFKD, combining marks dropped)."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


#: Dropped in every language: a question in Italian often carries English words and the other
#: way round, and no word of either list is worth matching on. "Why" and "perché" stay:
#: briefings explain themselves under a "Why ..." heading, and that is what they ask for.
STOP_WORDS = frozenset(fold(w) for w in _ENGLISH + _ITALIAN) - {"why", "perche"}
_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def words(text: str) -> list[str]:
    """The words of ``text``, lower case, accents kept (the stemmer needs them); common words
    and single letters are left out, numbers kept."""
    out = []
    for word in _WORD.findall(text.lower()):
        if fold(word) in STOP_WORDS or (len(word) < 2 and not word.isdigit()):
            continue
        out.append(word)
    return out


@cache
def stem(word: str, locale: str) -> str:
    """The accent-free Snowball stem of one lower-case ``word`` in ``locale`` (numbers and
    words of an unknown locale are only folded)."""
    algorithm = ALGORITHMS.get(locale)
    if algorithm is None or word.isdigit():
        return fold(word)
    return fold(_stemmer(algorithm).stemWord(word))


@cache
def _stemmer(algorithm: str) -> snowballstemmer.BaseStemmer:
    # One stemmer per language for the process: building one compiles its tables. Stemmers
    # are not thread-safe, but search runs on the event loop's thread only.
    return snowballstemmer.stemmer(algorithm)


def stems(text: str, locale: str) -> list[str]:
    """The stems of ``text`` in ``locale``, in order, repeats kept (term frequency counts)."""
    return [stem(word, locale) for word in words(text)]


def near(a: str, b: str, limit: int) -> int | None:
    """The edit distance between ``a`` and ``b`` if at most ``limit``, else None: letters
    inserted, deleted, replaced, or two neighbours swapped ("permtua"), each one edit.
    A row stops the comparison once every cell exceeds ``limit``, so comparing a word with
    the few thousand words of the briefings stays cheap."""
    if abs(len(a) - len(b)) > limit:
        return None
    before: list[int] = []
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i]
        for j, char_b in enumerate(b, 1):
            cost = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b))
            if i > 1 and j > 1 and char_a == b[j - 2] and a[i - 2] == char_b:
                cost = min(cost, before[j - 2] + 1)
            current.append(cost)
        if min(current) > limit:
            return None
        before, previous = previous, current
    return previous[-1] if previous[-1] <= limit else None
