"""Is a mention current, or negated, family, historical, hypothetical or uncertain? (ConText-style)

The ICD-10-CM Official Guidelines code only current conditions of the patient: "denies chest pain",
"mother with breast cancer", "history of pneumonia, resolved", "return if fever develops" must not
justify a code. Uncertain diagnoses ("probable pneumonia") depend on the setting: outpatient notes
code the symptoms instead (Section IV.H), inpatient notes documented at discharge code them as if
established (Section II.H). The coder's evidence tagger is trained to skip such mentions; this
rule-based check is the independent second opinion that decides `grounded`.

How it works (Harkema et al. 2009, ConText, simplified):
- the scope is the sentence around the span (split at . ! ? followed by space, newlines and ";"),
  cut further by termination words ("but", "however", "which", "presents", ...);
- a pre-trigger ("denies", "family history of", "if") governs the span when it comes before it in
  the same scope, within PRE_WINDOW words; a post-trigger ("was ruled out", "is suspected") when it
  follows within POST_WINDOW words. Adjectives ("prior", "former", "old") reach only the noun
  phrase they modify. A trigger that opens the span itself ("denies chest pain" tagged whole)
  counts as a pre-trigger, and then no trigger before the span reaches into it. A model's span
  can also cut a trigger or swallow one at its end ("[no signs] of anemia", "HTN ruled| out",
  "depression was excluded"): a pre-trigger across the span's start and a post-trigger reaching
  its end still govern it;
- another trigger in between ends a trigger's scope ("no evidence of recurrence and prior CVA":
  "no" stops at "prior"), except for conditions ("if ..."), which govern their whole clause;
- pseudo-triggers ("no change", "gram negative", "history of present illness", "mother reports")
  look like triggers but are not; overlapping triggers resolve to the longest, earliest one
  ("cannot be ruled out" is uncertain, not "ruled out" negated);
- a header line "Family history:" standing alone puts the lines under it, up to the next header or
  blank line, in family context;
- several statuses at once resolve by PRIORITY (negated first, uncertain last).

What a code is about matters. Procedure and service codes (CPT, HCPCS, PCS; screening and
immunization Z codes) ask "was it done?": a result ("rapid strep: negative") does not block them,
a refusal or a plan ("declined", "will consider ... at next visit") does. Some diagnosis codes mean
the status itself: Z80-Z84 are family history, Z85-Z87 personal history (`exempt_statuses`).
Tuned on hand-written phrasings and checked against the embedded corpus's mention annotations
(tests/test_grounding_context.py); real notes will need more triggers: add rows to _TABLE.
"""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Literal

from medcoder.codes.formats import ICD9CM, ICD10CM

NEGATED, FAMILY, HISTORICAL, HYPOTHETICAL, UNCERTAIN = "negated", "family", "historical", "hypothetical", "uncertain"
# "AKI, resolved with IV fluids": treated to resolution. In a hospital stay that treatment was this stay's, so
# the condition is coded (Section III: conditions that required treatment); at an office follow-up it is over.
RESOLVED = "resolved"
PRIORITY: tuple[str, ...] = (NEGATED, FAMILY, HYPOTHETICAL, HISTORICAL, RESOLVED, UNCERTAIN)
ALWAYS_BLOCKING: tuple[str, ...] = (NEGATED, FAMILY, HISTORICAL, HYPOTHETICAL)
PRE_WINDOW, POST_WINDOW = 20, 6  # words between trigger and span

Direction = Literal["pre", "post", "both"]
Subject = Literal["condition", "procedure", "any"]

_RELATIVE = (
    r"(?:mother|father|mom|dad|sister|brother|siblings?|parents?|aunt|uncle|grand(?:mother|father|parents?)"
    r"|cousin|son|daughter|niece|nephew|twin|(?:maternal|paternal)\s+(?:aunt|uncle|grand(?:mother|father)|side))"
    # not the words biology names after kin: "daughter vesicles" of a hydatid cyst, "sister chromatids"
    r"(?!s?\s+(?:vesicles?|cysts?|cells?|colon(?:y|ies)|chromatids?|chromosomes?|nuclei|nucleus|lesions?|nodules?))"
)
# what a relative has, the words between a relative and their condition ("father had", "mom w/")
_RELATIVE_HAS = (
    r"(?:\bwith\b|\bw/|\bhad\b|\bhas\b|\bhave\b|\bdied\s+(?:of|from)\b|\bdiagnosed\s+with\b|\bhistory\s+of\b"
    r"|\bhx\s+of\b|\bsuffer(?:s|ed)\s+from\b|\bwas\s+treated\s+for\b|:)"
)
_PHRASE = 3  # window, in words and without a comma, of triggers that modify one noun phrase
_MONTHS = r"January|February|March|April|May|June|July|August|September|October|November|December"
_YEARS_AGO = r"(?:\d+|a few|few|several|many|one|two|three|four|five|ten)\s+years?\s+ago"
# when a past condition happened, written after it: "in 2015", "2015", "3 years ago", "last year", "as a child"
DATED_PAST = (
    rf"in\s+(?:19|20)\d\d|(?:19|20)\d\d|{_YEARS_AGO}|(?:\d+|a\s+few|several)\s+(?:months?|weeks?)\s+ago|"
    rf"last\s+(?:year|month|week|winter|summer|spring|fall)|in\s+the\s+past|as\s+a\s+(?:child|teenager)|"
    rf"in\s+childhood|in\s+(?:{_MONTHS})(?:\s+(?:19|20)\d\d)?"
)

# Rows: (status, or None for a pseudo-trigger; direction; what it applies to; regular expressions).
# "condition" rows speak about diagnoses and symptoms, "procedure" rows about services (was it done?),
# "any" rows about both. Case-insensitive.
# An optional fifth element limits the trigger to a short phrase (see _PHRASE).
_TABLE: list[tuple] = [
    (
        None,
        "both",
        "any",
        [
            r"\bno\s+(?:change|increase|interval change|significant change|"
            r"further\s+(?:workup|testing|follow[- ]up))\b",
            r"\bnot\s+only\b",
            r"\bno\s+longer\b",  # a past state ("no longer smokes"), not a negation: see HISTORICAL
            # revascularisation treats coronary disease without ending it: "CAD s/p DES x2" is current CAD
            r"\b(?:s/p|status\s+post)\s+(?:\w+\s+){0,2}?(?:DES|BMS|stents?|stenting|PCI|PTCA|CABG|angioplasty)\b",
            r"\bnot\s+necessarily\b",
            # control of the condition, not its absence: "type 2 diabetes ... not controlled" is uncontrolled
            r"\bnot\s+(?:(?:well|adequately|optimally|yet)\s+)?controlled\b",
            r"\bnot\s+(?:yet\s+)?at\s+(?:goal|target)\b",
            # a function that fails is a problem stated, not a negation: "kidneys are not working well, stage 3
            # CKD", "not sleeping, depressed mood"
            r"\bnot\s+(?:(?:working|functioning|eating|sleeping|drinking|walking|improving|healing|responding"
            r"|tolerating|taking|thriving|gaining)\b|(?:doing\s+)?well\b)",
            r"\bgram[- ]negative\b",
            r"\bwithout\s+difficulty\b",
            r"\b(?:history\s+of\s+present\s+illness|past\s+(?:medical|surgical)\s+history|medical\s+history)\b",
            r"\bhistory\s+and\s+physical\b",
            r"\bprior\s+to\b",
            r"\bif\s+(?:needed|necessary|tolerated|possible)\b",
            r"\b"
            + _RELATIVE
            + r"(?:'s)?\s+(?:reports?|states?|says|notes|brought|is\s+present|at\s+(?:the\s+)?bedside|accompan\w+)\b",
            r"\baccompanied\s+by\s+(?:his|her|their)\s+" + _RELATIVE + r"\b",
            r"\b(?:onset|started|starting|began|beginning)\s+(?:\w+\s+){0,3}?ago\b",
            # the organism is unknown, not the infection: "pneumonia, organism not identified" (J18.9)
            r"\b(?:organism|pathogen|source|etiology|cause)\s+(?:(?:was|is)\s+)?(?:not\s+(?:identified|isolated|found|"
            r"determined|known)|unknown|unidentified|undetermined)\b",
            r"\bno\s+(?:organism|pathogen)\s+(?:was\s+)?(?:identified|isolated|found)\b",
            # the purpose of a current drug, not a hypothetical condition: "on clopidogrel for secondary
            # prevention" is long-term antiplatelet use (Z79.02); "prevention of stroke" stays hypothetical
            r"\bfor\s+(?:primary|secondary)\s+prevention\b(?!\s+of\b)",
            # the absence of sequelae, not of the event: "stroke 2019, no residual deficits" is the history
            # Z86.73 names ("... without residual deficits")
            r"\b(?:no|without)\s+(?:residual|lasting|permanent)\s+(?:neurologic(?:al)?\s+)?(?:deficits?|sequelae|weakness)\b",
            # how long the current complaint has lasted, not a past episode: "a 2-day history of hematuria",
            # "a 4-day history of swelling", "a 10-year history of hypertension" (still has it)
            r"\b(?:\d+|one|two|three|four|five|six|seven|eight|nine|ten|several|few|many)[-\s]+"
            r"(?:hours?|days?|weeks?|months?|years?)(?:'s?)?[-\s]+(?:long\s+)?history\s+of\b",
            # a writer's aside, not advice: "it should be noted that he had hypertension"
            r"\bit\s+should\s+be\s+(?:noted|mentioned|highlighted|emphasi[sz]ed|stressed)\b",
        ],
    ),
    (
        NEGATED,
        "pre",
        "any",
        [
            r"\bno\b",
            r"\bnot\b",
            r"\bnever\b",
            r"\bwithout\b",
            r"\bno\s+(?:evidence|signs?|symptoms?|history|complaints?|findings?)\s+of\b",
        ],
    ),
    (
        NEGATED,
        "pre",
        "condition",
        [
            r"\bden(?:y|ies|ied|ying|ys|yed|ie)\b",  # and the misspellings notes carry ("denys")
            r"\bneg(?:ative)?\s+for\b",
            r"\bfree\s+of\b",
            r"\babsence\s+of\b",
            r"\b(?:ruled|rules)\s+out\b",
            r"\bfails?\s+to\s+(?:reveal|show)\b",
            r"\bnegative\s+(?:family\s+)?history\s+(?:of|for)\b",
            # one trigger, so that "history of" does not open a new assertion: "denies any history of MI"
            r"\bden(?:y|ies|ied)\s*:?\s+(?:any\s+)?(?:(?:past|prior|personal|family)\s+)?(?:history|hx)\s+(?:of|for)\b",
        ],
    ),
    (
        NEGATED,
        "post",
        "condition",
        [
            r"\b(?:(?:was|is|has\s+been|have\s+been|were|been)\s+)?(?:ruled\s+out|excluded)\b",
            r"\b(?:(?:is|was|were|are)\s+)?(?:negative|absent|neg)\b",  # "SARS-CoV-2 PCR neg x2", "Flu/RSV neg"
            r"\bnot\s+(?:seen|present|found|detected|identified|demonstrated|appreciated|supported|confirmed)\b",
            r"\bden(?:ies|ied)(?=\s*(?:[.;,)]|$))",
            r"\bunlikely\b",  # "chest pain: denies." not "CAD: denies angina"
        ],
    ),
    (
        NEGATED,
        "both",
        "procedure",
        [
            r"\b(?:was\s+|were\s+|is\s+)?(?:declined|refused|deferred|cancell?ed|postponed)\b",
            r"\bnot\s+(?:done|performed|given|administered|obtained|completed)\b",
        ],
    ),
    (
        UNCERTAIN,
        "pre",
        "condition",
        [
            r"\b(?:probable|probably|possible|possibly|suspected|suspect|presumed|presumptive|questionable|likely)\b",
            r"\b(?:maybe|perhaps)\b",  # "headache, maybe migraine"
            r"\bsuspicio(?:n|us)\s+(?:of|for)\b",
            r"\bconcern(?:ing)?\s+for\b",
            r"\bworrisome\s+for\b",
            r"\br/o\b",
            r"\brule\s+out\b",
            r"\bto\s+exclude\b",  # "admitted to exclude subarachnoid hemorrhage": a rule-out
            r"\bquestion\s+of\b",
            r"\bconsistent\s+with\b",
            r"\bcompatible\s+with\b",
            r"\bsuggestive\s+of\b",
            r"\bmay\s+(?:have|be)\b",
            r"\bmight\s+(?:have|be)\b",
            r"\bcould\s+(?:have|be)\b",  # "could be reflux, possible angina"
            r"\b(?:cannot|can\s*not|can't)\s+(?:be\s+)?(?:rule[d]?\s+out|exclude[d]?)\b",
            r"\bdifferential(?:\s+diagnosis)?\s+(?:includes?|of)\b",
            r"\bddx\b",
            r"\b(?:evaluate|work[- ]?up)\s+for\b",
            r"\b(?:unclear|unknown|uncertain|not\s+sure|not\s+certain)\s+(?:if|whether)\b",
            r"\?",
        ],
    ),
    (
        UNCERTAIN,
        "post",
        "condition",
        [
            # "pneumonia is suspected", "pneumonia, probable." -- but not "cough, suspected pneumonia"
            r"\b(?:is|was|are|were|remains?)\s+(?:suspected|likely|possible|probable|presumed|questionable)\b",
            r"\b(?:suspected|likely|possible|probable|presumed|questionable)(?=\s*(?:[.;,)]|$))",
            r"\bnot\s+(?:been\s+)?(?:ruled\s+out|excluded)\b",
            r"\b(?:cannot|can\s*not|can't)\s+be\s+(?:ruled\s+out|excluded)\b",
            r"\?",
        ],
    ),
    (UNCERTAIN, "both", "condition", [r"\bversus\b", r"\bvs\b\.?(?!\s*:)", r"\bor\s+possibly\b"]),  # not "VS:" (vitals)
    (
        FAMILY,
        "pre",
        "condition",
        [
            r"\bfam(?:ily|\.)?\s+(?:history|hx)(?:\s+(?:of|for|is\s+(?:significant|positive|notable)\s+for|includes?))?\b:?",
            r"\bf(?:h|hx)\b\s*(?:of\b|:)?",
            r"\b(?:(?:his|her|their|the\s+patient's|patient's|pt's)\s+)?"
            + _RELATIVE
            + r"(?:'s)?(?:\s+\w+){0,2}?\s*(?:"
            + _RELATIVE_HAS
            + r"|\s-\s)",
        ],
    ),
    (
        FAMILY,
        "post",
        "condition",
        [
            r"\bin\s+(?:(?:his|her|their|the|a|patient's)\s+)?" + _RELATIVE + r"s?\b",
            r"\b(?:runs|running)\s+in\s+the\s+family\b",
            r"\bon\s+(?:his|her|the)\s+(?:mother's|father's)\s+side\b",
            r"\bfamilial\b",
        ],
    ),
    (
        HISTORICAL,
        "pre",
        "any",
        [
            r"\b(?:past\s+)?history\s+of\b",
            # "hx of", and "Hx breast CA 2014"; not a section label ("Hx:") nor social or family history
            r"(?<!social\s)(?<!fam\s)(?<!family\s)\bhx\b(?!\s*:)",
            r"\bh/o\b",
            r"\bno\s+longer\b",  # "no longer smokes"
            r"\bs/p\b",
            r"\bstatus\s+post\b",
            r"\b(?:was|were)\s+treated\s+for\b",
            r"\brecovered\s+from\b",
            # an earlier encounter's assessment carried into today's note ("Previous visit A/P copied: ...")
            r"\b(?:previous|prior|last)\s+(?:visit|encounter|admission|note)(?:'s)?\s+(?:a/p|assessment|plan|impression|dx|diagnos[ie]s)\b",
        ],
    ),
    # adjectives reach only the noun phrase they modify: "former smoker, COPD" says nothing about COPD
    (
        HISTORICAL,
        "pre",
        "any",
        [r"\b(?:previous|previously|prior|remote|former|formerly|resolved|childhood)\b", r"\bex-(?=[a-z])"],
        _PHRASE,
    ),
    (
        HISTORICAL,
        "pre",
        "condition",
        [  # "old MI", not "3 year old female"
            r"(?<!year )(?<!years )(?<!month )(?<!months )(?<!week )(?<!day )(?<![-\w])old\b"
            r"(?!\s+(?:age|man|woman|male|female|lady|gentleman|patient|boy|girl|child|infant))",
        ],
        _PHRASE,
    ),
    (
        HISTORICAL,
        "post",
        "any",
        [
            r"\bin\s+the\s+past\b",
            r"\b" + _YEARS_AGO + r"\b",
            r"\blast\s+(?:year|winter|summer|spring|fall)\b",
            r"\bin\s+(?:19|20)\d\d\b",
            r"\b(?:(?:has|had|which|that)\s+)?resolved\b",
            # "stroke 2019 with full recovery", not "pneumonia, full recovery expected"
            r"\b(?:with|made\s+an?)\s+(?:full|complete)\s+recovery\b(?!\s+(?:is\s+)?(?:expected|anticipated))",
            r"\bfully\s+recovered\b",
            r"\bas\s+a\s+(?:child|teenager)\b",
            r"\bin\s+childhood\b",
            r"\bpreviously\b",
            r"\bno\s+longer\b",
            # "smoker - quit 2015"
            r"\bquit\s+(?:(?:smoking|tobacco|drinking)\s+)?(?:in\s+)?(?:\d{1,2}/)?(?:19|20)\d\d\b",
        ],
    ),
    # the longer match wins over the bare "resolved" above: "COPD exacerbation, resolved with prednisone"
    (
        RESOLVED,
        "post",
        "condition",
        [r"\b(?:(?:has|had|which|that)\s+)?resolved\s+(?:with|after|following|on)\b"],
    ),
    # a condition named as what is weighed or looked for is not a diagnosis: "bowel cancer risk",
    # "colon cancer screening", "stroke prevention"
    (HYPOTHETICAL, "post", "condition", [r"\brisks?\b", r"\bscreening\b", r"\bprevention\b"], _PHRASE),
    # "appendicitis s/p appendectomy" is over, but in a list the procedure is an item of its own:
    # "NSTEMI, s/p DES to RCA" and "CAD, s/p CABG" keep the condition current
    (HISTORICAL, "post", "any", [r"\bs/p\b", r"\bstatus\s+post\b"], _PHRASE),
    # an episode dated by its month is a past one: "Had CAP in December", "- UTI in October" (a problem list's
    # history); only right after the mention, so "cough since October, worse" stays current
    (HISTORICAL, "post", "condition", [r"\bin\s+(?:" + _MONTHS + r")\b(?!\s+(?:and|to)\b)"], _PHRASE),
    # a service's result carried from an earlier date was not done at this visit: "Spirometry from 2024: FEV1/FVC
    # 0.76" (a condition "from 2010" is one the patient has had since, so this reads procedures only)
    (
        HISTORICAL,
        "post",
        "procedure",
        [r"\b(?:from|dated)\s+(?:(?:" + _MONTHS + r")\s+)?(?:19|20)\d\d\b", r"\bfrom\s+last\s+(?:year|month)\b"],
        _PHRASE,
    ),
    (
        HYPOTHETICAL,
        "pre",
        "any",
        [
            r"\bif\b",
            r"\bunless\b",
            r"\bshould\b",
            r"\bin\s+(?:case|the\s+event)\s+of\b",
            r"\b(?:watch|monitor|look\s+out)\s+for\b",
            # what to look out for, not what was found: "showed signs of GI bleeding" is a finding
            r"\bwarning\s+signs?\s+(?:and\s+symptoms\s+)?of\b",
            r"\bsigns?\s+and\s+symptoms\s+of\b",
            r"\b(?:discussed|reviewed|explained|educat\w*\s+(?:on|about)|counsell?ed\s+(?:on|about))\s+(?:the\s+)?signs?\s+of\b",
            r"\b(?:at\s+)?risk\s+(?:of|for)\b",
            # consent: "Risks reviewed with patient, including infection and postoperative pneumonia"
            r"\b(?:risks?|side\s+effects?|adverse\s+effects?)\b(?:,?\s+\w+){0,5}?,?\s+(?:including|include[sd]?|such\s+as)\b",
            r"\bto\s+(?:prevent|avoid)\b",
            r"\bprevention\s+of\b",
            r"\bprophylaxis\s+(?:for|against)\b",
            r"\bscreening\s+for\b",
            r"\breturn\s+(?:to\s+(?:the\s+)?(?:ed|er|clinic|office|emergency\s+(?:room|department))\s+)?"
            r"(?:precautions\s+)?for\b",
            r"\b(?:could|may|might|can)\s+(?:indicate|mean|signal|suggest|represent|be\s+(?:a\s+)?signs?\s+of)\b",
            r"\bcall\s+(?:\w+\s+){0,2}?(?:for|if)\b",
            r"\bprecautions\b",
            r"\b(?:go|return|come\s+back|present|report)\s+(?:to\s+(?:the\s+)?(?:ed|er|emergency\s+(?:room|department)|clinic|urgent\s+care)\s+)?(?:for|if)\b",
            r"\bseek\s+(?:\w+\s+)?(?:care|attention|help)\s+(?:for|if)\b",
        ],
    ),
    (
        HYPOTHETICAL,
        "post",
        "any",
        [
            r"\bshould\s+(?:it|this|they|these|symptoms?)\s+(?:develop|occur|recur|worsen|return)\b",
            r"\bprecautions\b",
            r"\bprophylaxis\b",
        ],
    ),
    (
        HYPOTHETICAL,
        "pre",
        "procedure",
        [  # planned, offered or discussed is not done
            r"\b(?:will|would|to|plan\s+to|plans\s+to|planning\s+to)\s+(?:consider|schedule|order|obtain|discuss|arrange)\b",
            r"\bconsider(?:ing|ed)?\b",
            r"\bdiscussed(?:\s+(?:possible|getting|the))?\b",
            r"\b(?:offered|recommended|due\s+for)\b",
            r"\b(?:may|might|will|would)\s+(?:need|require|benefit\s+from)\b",
        ],
    ),
    (
        HYPOTHETICAL,
        "post",
        "procedure",
        [
            r"\b(?:to\s+be|will\s+be)\s+(?:scheduled|done|given|considered|ordered|arranged|discussed)\b",
            r"\b(?:at|during)\s+(?:the\s+)?next\s+(?:visit|appointment)\b",
            r"\bnext\s+time\b",
            r"\bin\s+the\s+future\b",
            r"\b(?:was|were)\s+(?:offered|recommended|discussed)\b",
            r"\bif\b",
        ],
    ),
]

# Words that end a trigger's scope: what follows is a new assertion.
_TERMINATION = re.compile(
    r"\b(?:but|however|although|though|yet|except|aside\s+from|apart\s+from|which|who|whereas|while|now|currently"
    r"|presents?|presenting|presented|complains?|complaining|reports?|reported|endorses|endorsing|admits|notes"
    # after a comma, "with" adds what was found: "abdomen free of masses, with diffuse tenderness"; so does a
    # finding graded or counted, which an absent one is not: "no recurrence, scattered diverticulosis", "no rales,
    # mild wheezing"
    r"|,\s*with|,\s*(?:scattered|multiple|several|numerous|(?:a\s+)?few|mild|moderate|severe|small|large"
    r"|extensive|diffuse|trace))\b",
    re.IGNORECASE,
)
# A spaced dash starts a new clause (sentences.CLAUSE_END) and ends a pre-trigger's scope: "h/o TIA - on
# clopidogrel" (the drug is current); a post-trigger still reaches back over it ("Smoker - quit 2015").
SPACED_DASH = r"\s[-\u2013\u2014]+\s"
_DASH = re.compile(SPACED_DASH)
# Sentence ends: . ! ? followed by white space or the end, a newline, or ";".
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)|[\n;]")
_ABBREVIATIONS = {"vs", "dr", "mr", "mrs", "ms", "e.g", "i.e", "approx", "pt", "st"}
_HEADER = re.compile(r"^\s*([A-Za-z][A-Za-z /&()-]{1,40}):\s*(\S.*)?$")
_RELATIVE_LABEL = re.compile(r"^(?:[-*\u2022]\s*)?" + _RELATIVE + r"s?$", re.IGNORECASE)
_FAMILY_HEADER = re.compile(r"^(?:family\s+(?:medical\s+)?(?:history|hx)|fhx?)$", re.IGNORECASE)


@dataclass(frozen=True)
class Trigger:
    status: str | None  # None: pseudo-trigger
    direction: Direction
    subject: Subject
    pattern: re.Pattern[str]
    phrase_window: int | None = None  # words a phrase-level trigger reaches (no comma); None: the clause


@dataclass(frozen=True)
class ContextMatch:
    """The context of a mention and the character span of the trigger (or header) that set it."""

    status: str
    trigger: tuple[int, int]


# One compiled pattern per expression (not one alternation per row): an alternation stops at its
# first matching branch, so "no" would hide "no history of" starting at the same place.
TRIGGERS: tuple[Trigger, ...] = tuple(
    Trigger(row[0], row[1], row[2], re.compile(pattern, re.IGNORECASE), row[4] if len(row) > 4 else None)
    for row in _TABLE
    for pattern in row[3]
)


# a relative's condition, as the family history it is for the patient: "dad had MI at 48" is what
# Z82.49's own words call "family history of ischemic heart disease"
_RELATIVE_HAD = re.compile(
    r"\b(?:(?:his|her|their|the\s+patient's|patient's|pt's)\s+)?" + _RELATIVE + r"(?:'s)?\s*" + _RELATIVE_HAS,
    re.IGNORECASE,
)


def as_family_history(text: str) -> str:
    """`text` with each relative's condition worded as family history ("her father died of colon
    cancer" -> "family history of colon cancer"), the way a family-history code (Z80-Z84) says it; the
    verifier reads this beside the words as written."""
    return _RELATIVE_HAD.sub("family history of", text)


def states_a_doubted_diagnosis(text: str) -> bool:
    """Whether the note documents some condition as uncertain ("probable pneumonia", "rule out
    appendicitis", "asthma vs COPD"): any UNCERTAIN trigger for conditions except a bare "?" (which
    also ends questions). Outside the hospital such a note codes the documented signs and symptoms
    instead (ICD-10-CM Section IV.H), whether or not a coder scored the doubted diagnosis itself."""
    return any(
        t.status == UNCERTAIN and t.subject == "condition" and t.pattern.pattern != r"\?" and t.pattern.search(text)
        for t in TRIGGERS
    )


# each status's trigger patterns (None: the pseudo-triggers), in TRIGGERS order: the sentence checks below
# search only those they ask for (grounding asks them of every sentence and clause of a note, once per status)
_PATTERNS_OF: dict[str | None, tuple[re.Pattern[str], ...]] = {
    status: tuple(t.pattern for t in TRIGGERS if t.status == status)
    for status in dict.fromkeys(t.status for t in TRIGGERS)
}
_CONTEXT_PATTERNS = tuple(t.pattern for t in TRIGGERS if t.status is not None)


def qualifies(sentence: str) -> bool:
    """Whether any context trigger (negation, family, history, hypothesis, doubt) occurs in the
    sentence: one that does is no plain statement of what it names."""
    return any(pattern.search(sentence) for pattern in _CONTEXT_PATTERNS)


def without_pseudo_triggers(sentence: str) -> str:
    """`sentence` with its pseudo-triggers blanked out: "organism not identified", "no change" look like
    negations and are none, so they do not make a sentence qualified."""
    for pattern in _PATTERNS_OF.get(None, ()):
        sentence = pattern.sub(lambda m: " " * len(m.group(0)), sentence)
    return sentence


def has_trigger(sentence: str, statuses: Collection[str]) -> bool:
    """Whether the sentence holds a trigger of one of `statuses`, outside its pseudo-triggers."""
    unqualified = without_pseudo_triggers(sentence)
    return any(pattern.search(unqualified) for status in statuses for pattern in _PATTERNS_OF.get(status, ()))


def states_status(sentence: str, status: str) -> bool:
    """Whether a sentence carries a trigger of `status` ("Mother with colon cancer" for family, "Hx colon
    adenocarcinoma s/p hemicolectomy" for historical) and none that negates or defers what it says: a
    sentence a family- or personal-history code (Z80-Z87) may be looked for in."""
    # "no longer smokes" negates nothing (a pseudo-trigger), yet states a history
    return any(pattern.search(sentence) for pattern in _PATTERNS_OF.get(status, ())) and not has_trigger(
        sentence, (NEGATED, HYPOTHETICAL, UNCERTAIN)
    )


# Codes for confirmed cases only, in every setting: "suspected", "possible" or "inconclusive" COVID-19,
# HIV or identified-virus influenza is not coded, not even at inpatient discharge (I.C.1.g.1.a,
# I.C.1.a.1.a, I.C.10.c.1: exceptions to Section II.H); their signs and symptoms are. Pneumonia due to COVID-19
# (J12.82) is coded with a confirmed U07.1 only (I.C.1.g.1.c).
CONFIRMED_ONLY: tuple[str, ...] = ("U07.1", "J12.82", "B20", "J09", "J10")


def is_confirmed_only(code: str) -> bool:
    """Whether `code` is coded for confirmed cases only (CONFIRMED_ONLY), never on a doubted mention."""
    return code.startswith(CONFIRMED_ONLY)


def blocks_grounding(status: str | None, setting: str | None, code: str | None = None) -> bool:
    """Whether a mention with this status must not justify `code` (None: any code) in a note of this setting.

    Uncertain diagnoses ground only in inpatient notes, and there not for CONFIRMED_ONLY codes; so does a
    condition resolved with treatment (RESOLVED: treated during the stay, over by an office visit); an
    unknown setting is treated as outpatient, the safer side (the code goes to review instead of
    being accepted).
    """
    if status is None:
        return False
    if status == UNCERTAIN:
        return setting != "inpatient" or (code is not None and is_confirmed_only(code))
    if status == RESOLVED:
        return setting != "inpatient"
    return status in ALWAYS_BLOCKING


def _sentence_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    """[lo, hi): from the end of the last sentence end at or before `start` to the end of the first one at or
    after `end` (a full stop after an abbreviation ends nothing)."""
    starts, ends = _sentence_ends(text)
    before = bisect.bisect_right(ends, start) - 1
    after = bisect.bisect_left(starts, end)
    return (ends[before] if before >= 0 else 0), (ends[after] if after < len(ends) else len(text))


@functools.lru_cache(maxsize=8)
def _sentence_ends(text: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(starts, ends) of the note's sentence ends, found once per note: every mention of a long note asks for its
    sentence, and scanning the note from its start each time made grounding quadratic in the note's length."""
    found = [m for m in _SENTENCE_END.finditer(text)
             if not (m.group() == "." and _word_before(text, m.start()).lower() in _ABBREVIATIONS)]  # fmt: skip
    return tuple(m.start() for m in found), tuple(m.end() for m in found)


def _word_before(text: str, i: int) -> str:
    j = i
    while j > 0 and (text[j - 1].isalnum() or text[j - 1] == "."):
        j -= 1
    return text[j:i]


def _open_scope(between: str, window: int, phrase_window: int | None = None) -> bool:
    if phrase_window is not None and ("," in between or len(re.findall(r"\w+", between)) > phrase_window):
        return False
    return not _TERMINATION.search(between) and len(re.findall(r"\w+", between)) <= window


# words after a comma that still speak of the listed items: "fever, cough, all resolved"
_LIST_QUANTIFIER = re.compile(r"^(?:all|both|each|which|these|those|they|and|or)$", re.IGNORECASE)


def _another_subject(between: str) -> bool:
    """Whether a post-trigger's words after the mention start a new clause with a subject of its own:
    in "chest pain, ACS excluded" the exclusion is about ACS, not the chest pain ("pneumonia, ruled
    out" and "fever, cough, all resolved" keep theirs)."""
    if "," not in between:
        return False
    words = re.findall(r"[\w/-]+", between.rsplit(",", 1)[1])
    return any(not _LIST_QUANTIFIER.match(w) for w in words)


def _trigger_between(
    triggers: Sequence[tuple[int, int, Trigger]], lo: int, hi: int, other_than: str | None = None
) -> bool:
    """Whether a trigger (of another status than `other_than`, if given) lies in [lo, hi): a trigger
    between ends the scope of one further away (ConText). In "DM2, CKD 3, history of stroke in 2008",
    "in 2008" belongs to "history of stroke", not to DM2; in "no evidence of recurrence and prior CVA",
    "no" does not reach past "prior"."""
    return any(lo <= s and e <= hi and (other_than is None or t.status != other_than) for s, e, t in triggers)


def _family_section(text: str, start: int) -> ContextMatch | None:
    """A "Family history:" header alone on a line governs the lines below it, up to a blank line or
    another header ("Mother: ..." lines inside the section do not end it); an inline one ("FHx: father
    with colon cancer. Mother HTN.") governs the rest of its own line."""
    pos = text.rfind("\n", 0, start) + 1  # start of the span's line
    line = text[pos : text.find("\n", pos) if "\n" in text[pos:] else len(text)]
    own_line = True
    while True:
        header = _HEADER.match(line)
        if header and not _RELATIVE_LABEL.match(header.group(1).strip()):
            family = _FAMILY_HEADER.match(header.group(1).strip())
            if family and header.group(2) is None and pos < start:
                return ContextMatch(FAMILY, (pos, pos + len(line)))
            if family and own_line and header.group(2) is not None and start >= pos + header.start(2):
                return ContextMatch(FAMILY, (pos, pos + header.end(1)))
            if header.group(2) is not None or pos < start:
                return None  # a section header, or a labelled line of another section
        if pos == 0:
            return None
        prev = text.rfind("\n", 0, pos - 1) + 1
        line, pos, own_line = text[prev : pos - 1], prev, False
        if not line.strip():
            return None


def subject_of(system: str, code: str = "") -> Literal["condition", "procedure"]:
    """Diagnosis codes speak about conditions; procedure and service codes, and the ICD-10-CM
    encounter-for-screening (Z11-Z13) and immunization (Z23) codes, about services, which are coded
    when performed whatever their result ("rapid strep: negative" still bills the test)."""
    if system == ICD10CM and ("Z11" <= code[:3] <= "Z13" or code[:3] == "Z23"):
        return "procedure"
    return "condition" if system in (ICD10CM, ICD9CM) else "procedure"


# acute events coded as current only in their episode of care: an MI for 4 weeks (I.C.9.e.1, then I25.2),
# a stroke or TIA for its admission (then Z86.73 or I69, I.C.9.d.3), a pulmonary embolism while treated
_ACUTE_EVENTS = ("I21", "I22", "I26", "I60", "I61", "I62", "I63", "G45")
# a year written right after the event's name dates it: "NSTEMI 2020 (medically managed)", "TIA 3/2018"
_DATED = re.compile(r"\s*[,(]?\s*(?:\d{1,2}/)?(?:19|20)\d\d\b")


def is_dated_acute_event(text: str, end: int, system: str, code: str) -> bool:
    """Whether the mention of an acute-event code that ends at `end` is followed by the year it happened,
    which makes it a past event in a problem list ("PMH: NSTEMI 2020"): a history, not the event."""
    return system == ICD10CM and code.startswith(_ACUTE_EVENTS) and bool(_DATED.match(text, end))


# a malignancy that was excised or eradicated, with no further treatment directed to it and no evidence of it, is
# a personal history (Z85, I.C.2.d): what a note says to tell that, in the sentence that names the cancer
_ERADICATED = re.compile(
    r"\bno\s+(?:evidence|signs?)\s+of\s+(?:recurren\w*|residual|metasta\w*|(?:active\s+)?disease|malignancy)"
    r"|\bwithout\s+(?:evidence\s+of\s+)?recurren\w*|\bNED\b|\b(?:cancer|disease|tumou?r)[- ]free\b"
    r"|\bno\s+(?:further\s+|active\s+|current\s+)?(?:treatment|therapy|chemo\w*)\b(?!\s+(?:yet|planned))"
    r"|\b(?:receives|receiving|on)\s+no\s+(?:treatment|therapy)\b|\boff\s+(?:all\s+)?(?:treatment|therapy)\b"
    r"|\b(?:completed|finished)\s+(?:adjuvant\s+)?(?:chemo\w*|radiation|radiotherapy|treatment|therapy)\b"
    r"|\bPSA\s+(?:undetectable|undetected)\b",
    re.IGNORECASE,
)
# treatment still directed at the cancer keeps it current, whatever else the sentence says (I.C.2.d, I.C.2.m)
_ON_TREATMENT = re.compile(
    r"\b(?:on|receiving|continues|continuing|started|starting|currently)\s+(?:adjuvant\s+|maintenance\s+)?"
    r"(?:tamoxifen|anastrozole|letrozole|exemestane|leuprolide|enzalutamide|abiraterone|chemo\w*|radiation"
    r"|radiotherapy|hormon\w+\s+therapy|immunotherapy|treatment|therapy)\b",
    re.IGNORECASE,
)
# leukemia, lymphoma and myeloma code their remission in the category itself (C90-C95: "in remission")
_REMISSION_CODED = ("C90", "C91", "C92", "C93", "C94", "C95")
_FULL_STOP = re.compile(r"[.!?](?=\s|$)|\n")


def _to_full_stops(text: str, start: int, end: int) -> tuple[int, int]:
    """[lo, hi) of the sentence around text[start:end], from full stop to full stop (semicolons inside)."""
    lo = max((m.end() for m in _FULL_STOP.finditer(text, 0, start)), default=0)
    following = _FULL_STOP.search(text, end)
    return lo, following.start() if following else len(text)


def is_eradicated_malignancy(text: str, start: int, end: int, system: str, code: str) -> bool:
    """Whether the mention text[start:end] of a malignant neoplasm code names a cancer its sentence (to the
    full stop, semicolons included: "colon cancer treated in 2015; no evidence of recurrence") says is over:
    no evidence of it, no further treatment, treatment completed (I.C.2.d: then Z85, not the C code)."""
    if system != ICD10CM or not code.startswith("C") or code.startswith(_REMISSION_CODED):
        return False
    lo, hi = _to_full_stops(text, start, end)
    return bool(_ERADICATED.search(text, lo, hi)) and not _ON_TREATMENT.search(text, lo, hi)


def is_malignancy_on_treatment(text: str, start: int, end: int, system: str, code: str) -> bool:
    """Whether the mention text[start:end] of a malignant neoplasm code names a cancer its sentence says is
    still treated ("breast cancer diagnosed in 2019, on tamoxifen"): a current cancer, dated or not (I.C.2.d)."""
    if system != ICD10CM or not code.startswith("C"):
        return False
    return bool(_ON_TREATMENT.search(text, *_to_full_stops(text, start, end)))


def exempt_statuses(system: str, code: str) -> frozenset[str]:
    """Statuses that ARE the meaning of a code, so they support it instead of blocking it:
    Z80-Z84 family history (family, and historical: "father had colon cancer, s/p colectomy" is a
    family history whether or not the relative's disease is over), Z85-Z87, Z92, Z98 and I25.2 old MI
    personal history or post-procedural states (historical)."""
    if system != ICD10CM:
        return frozenset()
    category = code[:3]
    if "Z80" <= category <= "Z84":
        return frozenset({FAMILY, HISTORICAL})
    if category in ("Z85", "Z86", "Z87", "Z92", "Z98") or code == "I25.2":
        return frozenset({HISTORICAL})
    return frozenset()


# Chronic conditions a patient lives with: "history of hypertension", "hx of HTN, HLD, DM2", "PMH: COPD" name a
# condition that coexists with this visit (Section IV.J: code all documented conditions that coexist and affect
# care), not one that is over; an acute condition's history ("history of pneumonia") is still a past episode.
_ONGOING_CONDITIONS = (
    "I10", "I11", "I12", "I13", "I15", "I25.1", "I48", "I50", "I73", "E03", "E10", "E11", "E78", "J44", "N18",
    "N40", "G20", "G30", "G35", "G40", "F03", "F20", "F31", "M05", "M06", "M15", "M16", "M17", "M18", "M19",
    "K50", "K51", "B20",
)  # fmt: skip


def ongoing_condition(system: str, code: str) -> bool:
    """Whether a "history of" mention of `code` still names a current condition (_ONGOING_CONDITIONS)."""
    return system == ICD10CM and code.startswith(_ONGOING_CONDITIONS)


def stated_status(system: str, code: str) -> str | None:
    """The status a code's meaning is (family for Z80-Z84, historical for Z85-Z87, Z92, Z98, I25.2),
    i.e. which sentences state it; None for a code of a current condition."""
    statuses = exempt_statuses(system, code)
    return FAMILY if FAMILY in statuses else next(iter(statuses), None)


def detect_context(
    text: str,
    start: int,
    end: int,
    subject: Literal["condition", "procedure"] = "condition",
    ignore: Collection[str] = (),
) -> ContextMatch | None:
    """The context status of the mention text[start:end], or None when it is current and affirmed.

    `subject` picks the triggers that apply (see `subject_of`); statuses in `ignore` are not
    reported (see `exempt_statuses`).
    """
    # a span's leading or trailing list marks and punctuation ("- rule out appendicitis") are not words:
    # a trigger right after them opens the span
    while start < end - 1 and not text[start].isalnum():
        start += 1
    while end > start + 1 and not text[end - 1].isalnum():
        end -= 1
    kept = _sentence_triggers(text, *_sentence_bounds(text, start, end), subject)
    # A span that opens with its own trigger ("prior CVA", "history of stroke") is a new assertion:
    # triggers before it do not reach into it.
    opens_span = any(s <= start < e < end and t.direction != "post" for s, e, t in kept)
    found: list[ContextMatch] = []
    for s, e, trigger in kept:
        pre, post = trigger.direction in ("pre", "both"), trigger.direction in ("post", "both")
        if pre and s <= start < e < end:  # "denies chest pain" tagged whole, or "[no signs] of anemia" cut
            found.append(ContextMatch(trigger.status, (s, e)))
        elif post and start < s < end <= e:  # "[hypertension ruled] out", "depression was excluded" tagged whole
            found.append(ContextMatch(trigger.status, (s, e)))
        elif (
            pre
            and e <= start
            and not opens_span
            and _open_scope(text[e:start], PRE_WINDOW, trigger.phrase_window)
            and not _DASH.search(text[e:start])
            and (trigger.status == HYPOTHETICAL or not _trigger_between(kept, e, start, other_than=trigger.status))
        ):
            # a condition ("if cough persists, x-ray to evaluate for pneumonia") governs its whole clause
            found.append(ContextMatch(trigger.status, (s, e)))
        elif (
            post
            and s >= end
            and _open_scope(text[end:s], POST_WINDOW, trigger.phrase_window)
            and not _another_subject(text[end:s])
            and not _trigger_between(kept, end, s)
        ):
            found.append(ContextMatch(trigger.status, (s, e)))
    section = _family_section(text, start) if subject == "condition" else None
    if section is not None:
        found.append(section)
    found = [m for m in found if m.status not in ignore]
    return min(found, key=lambda m: PRIORITY.index(m.status)) if found else None


@functools.lru_cache(maxsize=1024)
def _sentence_triggers(text: str, lo: int, hi: int, subject: str) -> tuple[tuple[int, int, Trigger], ...]:
    """The triggers of `subject` in the sentence text[lo:hi] that the context check reads: outside the pseudo-
    triggers, none overlapping a longer or earlier one; in order. Found once per sentence: every mention and
    every code of a sentence asks for them, and each asking ran all the trigger patterns over it again."""
    triggers = [t for t in TRIGGERS if t.subject in ("any", subject)]
    matches = [
        (m.start(), m.end(), t) for t in triggers for m in t.pattern.finditer(text, lo, hi) if m.end() > m.start()
    ]
    pseudo = [(s, e) for s, e, t in matches if t.status is None]
    real = sorted(
        ((s, e, t) for s, e, t in matches if t.status is not None and not any(s < pe and ps < e for ps, pe in pseudo)),
        key=lambda m: (m[0], -(m[1] - m[0])),
    )
    kept: list[tuple[int, int, Trigger]] = []
    for s, e, trigger in real:
        if kept and (s, e) != kept[-1][:2] and s < kept[-1][1]:
            continue  # overlaps a longer or earlier trigger (the same text may be a pre- and a post-trigger)
        kept.append((s, e, trigger))
    return tuple(kept)
