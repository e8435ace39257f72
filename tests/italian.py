"""A check that Italian output holds no English: a small list of English words that are not
Italian too, looked for outside code spans (commands people type), names and titles."""

from __future__ import annotations

import re
from collections.abc import Iterable

#: Common English words, and the English words Fidelio's own texts and statuses use, that are
#: not also Italian words ("team", "briefing", "quiz", "pulse", "chat", "eNPS" are used in
#: Italian and left out, like "a", "in", "no", "data").
ENGLISH_WORDS = frozenset(
    """
    the a an is are was were be been being am has have had do does did done will would can
    could should may might must shall of and or but if then than so to for from with without
    by at on into onto about after before over under up down out off again
    i you he she it we they me him her us them my your his its our their this that these those
    there here what which who whom whose when where why how all any each every some none not
    only also already just yet still now soon please sorry thanks thank yes okay
    type write answer answers question questions choose choice skip start help mean
    schedule scheduled paused cancelled stopped running finished open closed
    round rounds survey surveys campaign campaigns report loyalty heat map chart summary
    index score dimension dimensions respondents range favorable favourable reportable hidden
    new review planned declined merged published anonymous named
    employee manager administrator admin people person
    suggestion suggestions idea ideas reason warning launch launched late expired
    does not cannot don't can't isn't won't doesn't
    """.split()
)
# Italian words too: never counted.
ENGLISH_WORDS = ENGLISH_WORDS - {"a", "i", "me", "so", "do", "no", "data", "team", "idea"}

_ESCAPED = re.compile(r"\\(.)")
_CODE = re.compile(r"`[^`\n]*`")
_EMAIL = re.compile(r"\S+@\S+")
_URL = re.compile(r"\w+://\S+")
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?", re.UNICODE)


def english_words(text: str, allowed: Iterable[str] = ()) -> list[str]:
    """The English words in ``text``, outside `code`, e-mail addresses, links and the
    ``allowed`` strings (names and titles, removed before looking). Text in neutral markup
    is read with its escapes undone."""
    text = _ESCAPED.sub(r"\1", text)
    for literal in sorted(allowed, key=len, reverse=True):
        if literal:
            text = text.replace(literal, " ")
    text = _URL.sub(" ", _EMAIL.sub(" ", _CODE.sub(" ", text)))
    text = text.replace("’", "'")
    found = []
    for word in _WORD.findall(text):
        # An Italian elision (l'assistente, all'HR) is read by the word after it.
        last = word if word.lower() in ENGLISH_WORDS else word.split("'")[-1]
        if last.lower() in ENGLISH_WORDS:
            found.append(last)
    return found
