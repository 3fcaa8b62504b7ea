"""Phrase tables of quality.v2, per supported language: refusals, leakage of prompts or
scaffolding, pleasantries, empty agreement or praise, and closing cues.

Each table is one compiled alternation of literal phrases (bounded gaps at most), matched
against normalised text (:func:`chimera.quality.tokens.normalize`), so matching is linear
in the text.  Leakage markers that belong to no language (``[SYSTEM]``, ``Turn 3 of 6``,
role labels) are in :data:`MARKERS`.
"""

from __future__ import annotations

import re
from typing import Final

from chimera.quality.language import SUPPORTED


def _table(phrases: str) -> re.Pattern[str]:
    """One alternative a line; a line ending in a backslash goes on on the next one."""
    joined = re.sub(r"\\\n\s*", "", phrases)
    alternatives = [p.strip() for p in joined.strip().split("\n") if p.strip()]
    return re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)")


_REFUSAL: Final = {
    "en": r"""
        as (?:an ai|a (?:large )?language model)(?: language model| assistant| model)?(?:,| i\b| i')
        i'?m (?:just |only )?an ai(?: language model| assistant| model)?(?:,| and\b|\.| so\b)
        i'?m sorry,? but (?:as an ai,? )?i (?:cannot|can't|can not|won't|am unable|am not able)
        i'?m sorry,? but i'?m (?:unable|not able|not comfortable)
        i'?m afraid i(?: cannot| can't| can not| won't| am unable| am not able|'m unable\
        |'m not able) (?:help|assist|provide|discuss|answer|share|continue|engage|go|get|comment\
        |do that|do this)
        i apologi[sz]e,? but i(?:'?m| am)? (?:cannot|can't|unable|not able|won't)
        (?:against|violates?|outside|beyond|contrary to|conflicts? with) (?:my|our\
        |the) (?:\w+ )?(?:guidelines|policies|policy|programming|principles)
        (?:my|our) (?:safety |content |usage )?(?:guidelines|policies|policy\
        |programming) (?:do not|don't|does not|doesn't|prevent|prohibit|forbid|won't|restrict)
        i(?: must| have to| need to| will have to|'ll have to|'d have to\
        | would have to) (?:respectfully |politely |regretfully )?(?:decline|refuse|abstain)
        i (?:respectfully|politely|regretfully) (?:decline|refuse)
        (?:i'?m|i am) not (?:comfortable|in a position|allowed|permitted\
        |willing) (?:to )?(?:discuss|provid|answer|help|assist|continu|engag|shar|talk|go|get\
        |elaborat|comment|explain|describ|detail|weigh|speculat|offer|giv|recommend|tak\
        |participat)\w*
        i (?:don't|do not) feel (?:comfortable|right|it(?:'s| is| would be) appropriate)
        i(?: would|'d) (?:rather|prefer) not (?:to )?(?:discuss|go|get|talk|answer|continue\
        |engage|comment|elaborate|provide|share|speculate|weigh|delve|dive)
        (?:it|that|this) (?:would not|wouldn't|is not|isn't) (?:be )?(?:appropriate|responsible\
        |safe|ethical|right) for me to
        (?:it|that|this) (?:would be|is) (?:inappropriate|irresponsible|unsafe|unethical) for me to
        for (?:safety|security|ethical|liability) reasons,? i
        (?:i|we) (?:cannot|can't|can not|won't|will not|must not|shouldn't\
        |should not)(?: \w+){0,4}? (?:for|due to|because of) (?:safety|security|ethical|legal\
        |liability) (?:reasons|concerns)
        let'?s (?:talk about|discuss|focus on|move on to|switch to|turn to) (?:something\
        |a (?:different|safer|more appropriate)) (?:else|topic|subject)
        let'?s change the (?:subject|topic)
        (?:perhaps|maybe) we (?:could|can|should) (?:talk about|discuss|focus on\
        |move on to) (?:something else|another (?:topic|subject))
        (?:unable|not able) to (?:assist|help) with (?:this|that|your) request
        i can't help with (?:this|that)
        is there (?:something|anything) else i can (?:help you with|do for you|assist)
        please consult (?:a|your) (?:doctor|healthcare professional|professional|physician)
        please consult (?:a|your) (?:lawyer|licensed \w+)
        it'?s (?:always )?best to consult (?:a|your) (?:doctor|professional|physician)""",
    "es": r"""
        como (?:una? )?(?:ia|inteligencia artificial|modelo de lenguaje|asistente virtual)\
        (?:,| no\b| yo\b)
        lo siento,? (?:pero )?no (?:puedo|podré|me es posible|estoy en condiciones)
        me temo que no (?:puedo|podré)
        no me (?:siento|resulta|parece) (?:cómod[oa]|apropiado|adecuado)
        no (?:es|sería|resulta) (?:apropiado|adecuado|responsable|ético|seguro) que (?:yo )?
        no (?:es|sería) (?:apropiado|adecuado|responsable) (?:por|de) mi parte
        en contra de (?:mis|las|nuestras) (?:directrices|políticas|normas|pautas)
        por (?:razones|motivos) de (?:seguridad|ética),? no
        debo (?:declinar|abstenerme|rechazar|negarme)
        prefiero no (?:hablar|entrar|discutir|responder|continuar|abordar|comentar|profundizar\
        |seguir)
        no (?:tengo permitido|me está permitido)
        (?:hablemos|podríamos hablar) de (?:otra cosa|otro tema)
        (?:te|le) recomiendo consultar (?:a|con) un (?:profesional|médico)""",
    "fr": r"""
        en tant qu'(?:ia|intelligence artificielle|assistant|modèle de langage)(?:,| je\b| j')
        (?:je suis )?désolée?,? (?:mais )?je ne (?:peux|suis|pourrai|vais)
        je crains de ne (?:pas )?pouvoir
        je ne me sens pas (?:à l'aise|autorisée?)
        il ne (?:serait|me serait|m'est|est) pas (?:approprié|responsable|raisonnable|prudent\
        |éthique)
        (?:contraire|contrevient) (?:à|aux) (?:mes|nos) (?:directives|règles|consignes|principes)
        va à l'encontre de (?:mes|nos) (?:directives|règles|consignes|principes)
        pour des raisons (?:de sécurité|éthiques|de sûreté),? je
        je (?:dois|me dois de|me vois obligée? de) (?:refuser|décliner|m'abstenir)
        je préfère ne pas (?:aborder|discuter|parler|répondre|entrer|continuer|détailler\
        |poursuivre|m'étendre)
        je ne suis pas autorisée?
        parlons (?:plutôt )?d'autre chose
        je vous (?:conseille|recommande) de consulter un (?:professionnel|médecin)""",
    "de": r"""
        als (?:ki|künstliche intelligenz|sprachmodell|ki-sprachmodell|ki-assistent|ki-modell)\
        (?:,| kann\b| darf\b| bin\b| habe\b)
        es tut mir leid,? (?:aber )?(?:ich kann|das kann|darauf|dazu|hierzu|ich werde|ich darf\
        |ich möchte)
        (?:ich|wir) (?:muss|müssen|möchte|werde)(?: \S+){0,3}? (?:ablehnen|verweigern)
        (?:das|dies|es) (?:verstößt|widerspricht) (?:gegen )?(?:meine|meinen|unsere|unseren\
        |die) (?:richtlinien|grundsätze|grundsätzen|vorgaben|regeln)
        (?:gegen|entgegen) meine(?:n)? (?:richtlinien|grundsätze|vorgaben|regeln)
        aus (?:sicherheitsgründen|ethischen gründen|gründen der sicherheit)(?: \S+){0,3}? (?:kann\
        |werde|möchte|darf) ich
        ich fühle mich nicht wohl
        es wäre nicht (?:angemessen|verantwortungsvoll|angebracht|sicher|richtig)
        ich möchte (?:lieber )?nicht (?:darauf|näher|weiter|darüber|dazu)
        ich bin nicht (?:befugt|berechtigt)
        ich darf (?:dazu |darüber |hierzu )?(?:leider )?(?:keine|nicht)
        lass(?:t)? uns (?:lieber )?über (?:etwas anderes|ein anderes thema)
        bitte wenden sie sich an (?:einen|eine) (?:arzt|ärztin|fachmann|fachperson)
        bitte konsultieren sie (?:einen|eine) (?:arzt|ärztin|fachmann|fachperson)""",
}
_OBJ_EN = (
    r"(?: you)?(?: with| on| about| in| into| to| for)?"
    r" (?:that|this|it|those|these|such|any|anything|details|specifics|information|instructions"
    r"|guidance|advice|further|more|here|debates|discussions"
    r"|the (?:details|specifics|steps|exact|topic|subject"
    r"|request|question|conversation|discussion|debate)|a (?:detailed|step|guide|list))"
)
#: Inability to do something: a refusal when the same sentence gives grounds
#: (:data:`_REFUSAL_GROUNDS`) for it; alone it is often a mere limitation.
_REFUSAL_WEAK: Final = {
    "en": r"""
        i(?: cannot| can't| can not| won't| will not| won't be able to| will not be able to\
        | am unable to|'m unable to| am not able to|'m not able to| am not going to\
        |'m not going to| must not| shouldn't| should not)(?: really| actually| responsibly\
        | safely)? (?:help(?! but| think| feel| wonder| notic| being)|assist|provide|give|offer\
        |discuss|answer|share|continue|engage|go into|get into|talk about|elaborate|comment\
        |explain|describe|detail|write|produce|participate|take part|speculate|weigh in|go|say\
        |delve|dive|outline|walk you through)"""
    + _OBJ_EN,
    "es": r"""
        no (?:puedo|podré|voy a|debo|me es posible\
        |estoy en condiciones de)(?: \S+){0,2}? (?:ayudar\w*|proporcionar\w*|ofrecer\w*|dar\w*\
        |responder\w*|hablar|discutir|continuar|participar|entrar|compartir|abordar|seguir\
        |detallar|explicar|comentar|profundizar|describir)""",
    "fr": r"""
        je ne (?:peux|pourrai|vais|dois|saurais)(?: pas| point)?(?: \S+){0,2}? (?:aider|fournir\
        |donner|répondre|discuter|continuer|aborder|participer|partager|parler|entrer|poursuivre\
        |détailler|expliquer|commenter|approfondir|décrire)
        je ne suis pas en mesure de (?:\S+ ){0,2}?(?:aider|fournir|donner|répondre|discuter\
        |continuer|aborder|participer|partager|parler|entrer|poursuivre|détailler|expliquer\
        |commenter|approfondir|décrire)""",
    "de": r"""
        (?:ich kann|kann ich|ich werde|werde ich|ich möchte|möchte ich)(?: \S+){0,5}? (?:nicht\
        |keine|keinen|keinerlei)(?: \S+){0,4}? (?:helfen|geben|anbieten|bereitstellen|beantworten\
        |eingehen|äußern|liefern|besprechen|diskutieren|erklären|teilen|fortsetzen|erläutern\
        |beschreiben|nennen|vertiefen|ausführen|weiterführen|sprechen|reden|teilnehmen|machen)""",
}
_REFUSAL_GROUNDS: Final = {
    "en": r"""
        safe|safely|safety|unsafe|harm\w*|danger\w*|hazard\w*|risk\w*|misus\w*|abus\w*|polic(?:y\
        |ies)
        guidelines?|(?:in)?appropriate(?:ly)?|(?:ir)?responsib\w*|(?:un)?ethical\w*|sensitive\
        |allowed
        permitted|illegal|liability|restrict\w*|comfortable|conscience|sorry|unfortunately|afraid\
        |regret""",
    "es": r"""
        segur\w*|peligr\w*|dañ\w*|perjudic\w*|riesgo\w*|polític\w*|directrices|normas|apropiad\w*
        inapropiad\w*|responsab\w*|étic\w*|sensible|permitido|ilegal|lo siento|lamentablemente
        desafortunadamente""",
    "fr": r"""
        sécurit\w*|dangere\w*|danger|nuisible\w*|préjudic\w*|risque\w*|politique\w*|directives\
        |règles
        consignes|approprié\w*|inapproprié\w*|responsab\w*|éthique\w*|sensible\w*|autorisée?s?
        illégal\w*|désolée?|malheureusement""",
    "de": r"""
        sicherheit\w*|gefahr\w*|gefährlich\w*|schaden\w*|schädlich\w*|risik\w*|richtlinie\w*
        grundsätz\w*|vorgaben|angemessen\w*|unangemessen\w*|verantwort\w*|ethisch\w*|heikel|sensibel
        erlaubt|illegal\w*|missbrauch\w*|leider""",
}

_LEAKAGE: Final = {
    "en": r"""
        (?:my|the|your) system (?:prompt|message|instructions?)
        according to (?:my|the) (?:instructions|system prompt|persona|guidelines|role|brief\
        |prompt|setup|character)
        (?:my|the) (?:instructions|guidelines|prompt|brief|setup) (?:are|say|says|said|tell|tells\
        |told|were|given|ask|asks|asked|require|requires|want|wants|specif\w+)
        my persona
        (?:my|the|this) (?:character|persona|role) (?:brief|description|sheet|card|notes|prompt)
        persona (?:instructions|brief|description|card|prompt)
        as instructed(?: by \w+)?
        as per (?:the|my) (?:instructions|brief|prompt|setup|guidelines)
        i(?:'ve been| have been| was| am|'m) (?:told|instructed|asked|supposed|meant|programmed\
        |configured|prompted|assigned|scripted|directed) to (?:keep|play|argue|take|respond|be\
        |act|stay|defend|represent|oppose|support|portray|speak|limit|answer|reply|write|pretend\
        |role-?play|adopt|embody|disagree|agree)
        i (?:have been|was) (?:told|instructed|asked):
        (?:the )?orchestrator
        simulated (?:debate|conversation|dialogue)
        as specified in the (?:configuration|prompt|instructions|setup)
        you are a helpful (?:ai )?assistant
        respond as \w+
        do not reveal (?:these|your|the) instructions
        stay(?:ing)? in character
        break(?:ing)? character
        out of character
        your (?:assigned )?(?:role|task|goal|job|objective) (?:is|will be) to
        my assigned (?:role|position|side|persona)
        (?:i'?m|i am) (?:playing|portraying|role-?playing) (?:the role|the part|a character)
        keep(?:ing)? (?:each|your|this|every|my|the) (?:reply|answer|response|turn|message\
        |contribution)s? (?:under|below|to|within) \d+ words
        (?:keep(?:ing)? (?:this|it|things)|respond(?:ing)? in|reply(?:ing)? in\
        |answer(?:ing)? in) (?:under|below|within|fewer than|less than|no more than\
        |at most) \d+ words
        (?:my|the|a|this) \d+[- ]?word (?:limit|cap|max|maximum|budget|ceiling)
        my word (?:limit|count|budget)
        the word limit (?:for|of) (?:this|my|each|every) (?:turn|reply|response|message)
        (?:limited|restricted|capped) to \d+ words
        (?:stay|staying|stick|sticking) (?:within|under|to) (?:the |my |our )?(?:\d+[- ]?word\
        |word limit)
        speak in the first person""",
    "es": r"""
        (?:mi|el) (?:prompt|mensaje) del sistema
        mis (?:instrucciones|indicaciones|directrices)
        según (?:mis|las) (?:instrucciones|indicaciones)
        como se me ha indicado
        se me (?:ha pedido|pidió|indicó|ha indicado|ordenó|ha asignado) que
        me (?:han|pidieron|indicaron) que (?:defienda|mantenga|actúe|responda|sea|interprete\
        |argumente)
        mi (?:papel|personaje|rol) (?:es|consiste en) (?:defender|argumentar|interpretar|actuar)
        eres un asistente (?:útil|servicial)
        (?:límite de|máximo de|menos de) \d+ palabras""",
    "fr": r"""
        (?:mon|le) (?:prompt|message) système
        mes (?:instructions|consignes)
        selon (?:mes|les) (?:instructions|consignes)
        comme (?:on me l'a demandé|demandé dans mes consignes)
        (?:on m'a|il m'a été) demandé de (?:défendre|jouer|rester|répondre|garder|adopter\
        |argumenter)
        mon rôle (?:est|consiste à) (?:de )?(?:défendre|jouer|argumenter)
        tu es un assistant (?:utile|serviable)
        (?:limite de|maximum de|moins de) \d+ mots""",
    "de": r"""
        (?:mein|der|dem|im) system-?prompt
        meine? (?:anweisungen|vorgaben)
        laut (?:meinen|den) (?:anweisungen|vorgaben)
        wie angewiesen
        ich (?:wurde|bin) (?:angewiesen|gebeten|beauftragt) worden
        ich wurde (?:angewiesen|gebeten|beauftragt)
        meine rolle (?:ist|besteht darin) (?:es )?
        du bist ein hilfreicher assistent
        (?:unter|maximal|höchstens) \d+ wörter(?:n)?
        wort(?:limit|grenze)""",
}

#: Scaffolding of any language: harness markers, turn counters, role labels opening a line,
#: chat-template tokens, word counts.
MARKERS: Final = re.compile(
    r"\[(?:system|end of turn|inst|/inst|user|assistant|turn \d+|round \d+)\b[^\]\n]{0,80}\]"
    r"|<\|?(?:system|im_start|im_end|user|assistant|endoftext|eot_id|start_header_id)\|?>"
    r"|<<\s?/?sys\s?>>"
    r"|</?(?:system|user|assistant|model)[_-]\w+(?: [^<>\n]{0,60})?>"
    r"|(?<!\w)(?:turn|round|reply|response|message|exchange) \d+ ?(?:of|/) ?\d+(?!\w)"
    r"|(?<!\w)turn \d+ ?[-\u2013\u2014:] ?(?:assistant|user|model|system)(?!\w)"
    r"|^#{1,6} ?(?:response|reply|turn|answer) \d+\s*$"
    r"|^#{1,6} ?(?:instruction|system|input|user|assistant|human)s?\b"
    r"|(?<!\w)(?:system|user|assistant) (?:prompt|message) ?:"
    r"|(?<!\w)word count ?: ?\d+"
    r"|\(\d+ (?:words|palabras|mots|wörter)\)"
    r"|(?<!\w)persona ?:"
)
#: A line written in a speaker's voice, ``Name: text`` (or ``**Name:** text``; a list item is not).
SCRIPT_LINE: Final = re.compile(r"^(?:\*\*|__)?([^\W\d_]+)(?:\*\*|__)?\s*:(?:\*\*|__)?\s+\S")
#: Recited setup text: "You are Ana, an urban planner ...", "You are a retired nurse who ...".
SETUP: Final = re.compile(
    r"^you are (?:[^\W\d_]+, (?:a|an|the) |(?:a|an) [^.\n]{0,80}?"
    r" (?:who|named|called|taking part|participating|debating"
    r"|in a (?:debate|conversation|discussion)))"
)

_PLEASANTRY: Final = {
    "en": r"""
        thank(?:s| you)(?: so much| very much| again)?
        you'?re (?:very |most )?welcome
        (?:it'?s|it was|it has been) (?:a|my) pleasure
        (?:glad|happy) (?:i could|to) help
        have a (?:great|good|nice|wonderful|lovely) (?:day|evening|weekend|one)
        take care
        bye(?: for now)?
        goodbye
        hello
        hi(?: there)?
        good (?:morning|afternoon|evening)
        how are you(?: doing)?(?: today)?
        (?:i'?m|i am) doing (?:great|well|fine|good)
        (?:nice|great|wonderful|lovely) to (?:chat|talk|meet|speak)
        (?:this|it) (?:has been|was) a (?:really |very )?(?:great|good|lovely) discussion
        (?:this|it) (?:has been|was) a (?:really |very )?(?:great|good|lovely) (?:conversation|chat)
        (?:this|it) (?:has been|was) a (?:really |very )?(?:wonderful|fascinating) discussion
        (?:this|it) (?:has been|was) a (?:really |very )?(?:wonderful|fascinating) conversation
        looking forward to
        anytime
        likewise
        you too
        i appreciate (?:it|that|you)
        (?:it'?s|it was|it has been) (?:great|nice|lovely|wonderful|good) (?:talking|chatting\
        |speaking) (?:with|to) you
        cheers
        see you
        talk soon
        all the best
        best wishes
        (?:hope|hoping) (?:you'?re|you are) (?:well|doing well)
        how'?s it going
        good to (?:see|hear from) you""",
    "es": r"""
        (?:muchas )?gracias(?: de nuevo)?
        de nada
        un placer
        hola
        adiós
        hasta (?:luego|pronto)
        cuídate
        que tengas un buen día
        encantad[oa]
        buenos días
        buenas (?:tardes|noches)
        qué tal
        (?:un )?saludos?
        nos vemos
        mucho gusto
        igualmente
        cómo (?:estás|está)
        que (?:te|le) vaya bien""",
    "fr": r"""
        merci(?: beaucoup| encore)?
        de rien
        avec plaisir
        bonjour
        salut
        au revoir
        à bientôt
        bonne (?:journée|soirée)
        ravie? de
        bonsoir
        enchantée?
        comment (?:allez-vous|vas-tu|ça va)
        ça va
        à (?:plus tard|la prochaine)
        bonne continuation
        de même
        prenez soin de vous
        je vous remercie""",
    "de": r"""
        (?:vielen )?dank(?:e)?(?: schön| sehr)?
        gern geschehen
        bitte schön
        hallo
        guten tag
        auf wiedersehen
        tschüss
        bis bald
        schönen tag noch
        freut mich
        guten (?:morgen|abend)
        wie geht(?:'s| es (?:ihnen|dir))
        schönen (?:abend|tag)
        alles gute
        mach's gut
        bis später
        gleichfalls
        (?:vielen )?herzlichen dank
        servus""",
}

_SYCOPHANCY: Final = {
    "en": r"""
        (?:great|good|excellent|fantastic) (?:point|question|observation|analysis|topic)
        (?:wonderful|brilliant|insightful) (?:point|question|observation|analysis|topic)
        (?:i )?(?:completely |totally |fully |absolutely )?agree(?: with (?:you|every word))?
        agree with everything you said
        i couldn'?t (?:agree more|have put it better)
        you'?re (?:so |absolutely |completely |totally )?right
        (?:exactly|absolutely)(?: right)?
        well put
        you put it perfectly
        (?:what|such) an? (?:fascinating|brilliant|insightful) (?:topic|observation|point)
        (?:what|such) an? (?:fascinating|brilliant|insightful) (?:question|issue)
        (?:what|such) an? (?:important|great) (?:topic|observation|point|question|issue)
        see eye to eye
        i feel the same way
        (?:that'?s|this is|what) (?:a |an )?(?:really |very |such a |truly )?(?:great|good\
        |excellent|brilliant|insightful|fascinating|compelling|thoughtful|wonderful|powerful\
        |astute|sharp|superb|fantastic) (?:point|question|observation|insight|argument\
        |perspective|way to put it|framing|analysis|take)
        (?:you'?ve|you have) (?:really |truly |perfectly |beautifully )?(?:captured|nailed|hit\
        |summed up|articulated|expressed|put) (?:it|that|the|this)
        you make (?:a|an|some) (?:great|good|excellent|compelling|valid|fair|strong|brilliant\
        |insightful) (?:point|case|argument)s?
        (?:beautifully|perfectly|brilliantly|nicely|eloquently) (?:said|put|articulated|stated\
        |argued|expressed)
        spot on
        i (?:love|admire|really appreciate) (?:how|the way|your)
        couldn'?t agree more""",
    "es": r"""
        (?:muy )?buena pregunta
        (?:excelente|gran|buen) punto
        (?:estoy )?(?:totalmente |completamente )?de acuerdo
        tienes (?:toda la )?razón
        exactamente
        (?:qué|muy) buen[ao]? (?:punto|pregunta|observación|reflexión|análisis)
        (?:excelente|brillante|gran) (?:punto|pregunta|observación|reflexión|análisis|argumento)
        coincido (?:plenamente|totalmente|completamente|contigo|con usted)
        (?:lo )?has (?:expresado|explicado|dicho) (?:muy bien|perfectamente|de maravilla)
        (?:muy )?bien dicho
        tiene (?:toda la )?razón""",
    "fr": r"""
        (?:très )?bonne (?:question|remarque)
        (?:excellente|belle) (?:question|remarque)
        (?:je suis )?(?:tout à fait |entièrement )?d'accord
        vous avez (?:tout à fait )?raison
        exactement
        (?:quelle|très) (?:bonne|belle|excellente) (?:question|remarque|observation|analyse\
        |réflexion)
        (?:excellente|belle|judicieuse|pertinente) (?:question|remarque|observation|analyse\
        |réflexion)
        je partage (?:entièrement|totalement|tout à fait|pleinement) (?:votre|ton) (?:avis\
        |point de vue)
        (?:très )?bien dit
        vous l'avez (?:parfaitement|très bien) (?:dit|exprimé|résumé)
        c'est (?:tout à fait|parfaitement|exactement) (?:juste|vrai|ça)""",
    "de": r"""
        (?:sehr )?gute (?:frage|punkt)
        (?:guter|toller|ausgezeichneter) punkt
        (?:da )?(?:stimme ich (?:ihnen |dir )?(?:voll |völlig )?zu|bin ich (?:ganz )?ihrer meinung)
        sie haben (?:völlig |absolut )?recht
        genau
        (?:was für eine|eine sehr|eine) (?:gute|großartige|ausgezeichnete|hervorragende|tolle\
        |kluge|spannende) (?:frage|beobachtung|überlegung|analyse)
        (?:sehr )?gut gesagt
        (?:haben sie|hast du) (?:das )?(?:sehr gut|perfekt|treffend|wunderbar) (?:gesagt\
        |formuliert|erklärt|zusammengefasst)
        (?:da )?(?:hast du|haben sie) (?:völlig |absolut |vollkommen )?recht
        ich stimme (?:ihnen|dir) (?:voll |völlig |vollkommen |absolut |ganz )?zu
        (?:absolut|völlig) richtig""",
}

_CLOSING: Final = {
    "en": r"""
        (?:to )?(?:sum|summ?ing) (?:it )?up
        in (?:short|summary|sum|conclusion)
        (?:so )?the (?:practical|short|bottom) (?:answer|line|position|upshot)
        overall
        (?:that'?s|this is) a (?:good|fair|useful) (?:place|point) to (?:stop|end|leave it)
        thank(?:s| you) for (?:the|this|a) (?:conversation|discussion|chat)
        goodbye""",
    "es": r"""
        en resumen
        en conclusión
        en definitiva
        en suma
        gracias por la conversación""",
    "fr": r"""
        en résumé
        en conclusion
        en somme
        bref
        merci pour cette (?:conversation|discussion)""",
    "de": r"""
        zusammenfassend
        kurz gesagt
        alles in allem
        unterm strich
        danke für das gespräch""",
}

REFUSAL: Final = {lang: _table(_REFUSAL[lang]) for lang in SUPPORTED}
REFUSAL_WEAK: Final = {lang: _table(_REFUSAL_WEAK[lang]) for lang in SUPPORTED}
REFUSAL_GROUNDS: Final = {lang: _table(_REFUSAL_GROUNDS[lang]) for lang in SUPPORTED}
LEAKAGE: Final = {lang: _table(_LEAKAGE[lang]) for lang in SUPPORTED}
PLEASANTRY: Final = {lang: _table(_PLEASANTRY[lang]) for lang in SUPPORTED}
SYCOPHANCY: Final = {lang: _table(_SYCOPHANCY[lang]) for lang in SUPPORTED}
CLOSING: Final = {lang: _table(_CLOSING[lang]) for lang in SUPPORTED}
#: Words of praise, thanks and agreement: not content, whatever else surrounds them.
_FILLER_TEXT: Final = """thank thanks welcome pleasure glad happy help helpful great good nice
    excellent fantastic wonderful brilliant insightful lovely point question observation analysis
    topic agree agreed completely totally fully absolutely exactly right indeed really
    perfectly well put couldn't have put better more again much appreciate appreciated
    day evening weekend care bye goodbye hello hi there morning afternoon how doing today
    fine chat talk meet looking forward anytime likewise too same way feel see eye
    important fascinating such discussion conversation interesting excited discuss
    sure yes yeah okay ok true so thing everything said every word issue captured heart
    taking time joining having being here enjoy enjoyed wonderful totally
    gracias nada placer hola adiós luego pronto cuídate buen buena día encantado encantada
    pregunta punto acuerdo razón exactamente totalmente completamente excelente gran
    merci rien plaisir bonjour salut revoir bientôt bonne journée soirée ravi ravie
    question remarque accord raison exactement entièrement excellente belle
    danke dank schön sehr gern geschehen bitte hallo guten tag wiedersehen tschüss bald
    schönen freut gute frage punkt guter toller zustimme stimme meinung recht genau"""
FILLER_WORDS: Final = frozenset(_FILLER_TEXT.split())
#: Words of praise and agreement in en/es/fr/de: what a flattering sentence is made of,
#: beside function words and :data:`FILLER_WORDS`.
_PRAISE_TEXT: Final = """great good excellent fantastic wonderful brilliant insightful superb
    remarkable impressive compelling thoughtful nuanced articulate eloquent persuasive astute
    sharp spot nailed captured beautifully wonderfully brilliantly perfectly truly incredibly
    deeply genuinely really absolutely completely totally entirely wholeheartedly agree agreed
    agreeing right correct exactly indeed precisely valid fair well said put framed framing
    articulated expressed observation point points question insight insights perspective
    perspectives argument analysis reasoning essence love admire appreciate appreciated
    fascinating interesting important excellent clearly clear amazing outstanding
    excelente brillante fantástico fantástica maravilloso maravillosa genial perspicaz acertado
    acertada magnífico magnífica estupendo estupenda coincido absolutamente totalmente
    completamente razón acuerdo punto pregunta perspectiva análisis reflexión interesante
    excelentes buen buena muy bien dicho
    excellent excellente brillant brillante formidable remarquable pertinent pertinente
    judicieux judicieuse parfaitement absolument entièrement magnifique superbe génial
    raison accord remarque question perspective analyse réflexion intéressant intéressante
    très bien dit
    ausgezeichnet hervorragend brillant großartig wunderbar treffend absolut völlig genau
    richtig toll klug scharfsinnig recht zustimmen stimme zu punkt frage perspektive analyse
    gedanke interessant sehr gut gesagt vollkommen"""
PRAISE_WORDS: Final = frozenset(_PRAISE_TEXT.split())
_COURTESY_TEXT: Final = """cheers see soon best wishes hope hoping going hear talking chatting
    speaking buenos días buenas tardes noches tal saludo saludos vemos mucho gusto igualmente
    cómo estás vaya bonsoir enchanté enchantée comment allez vas ça plus tard prochaine
    continuation même prenez soin remercie morgen abend geht geht's ihnen dir alles gute
    mach's später gleichfalls herzlichen servus te bien contigo usted ustedes toi ihnen dir
    euch bis gut plenamente expresado maravilla dicho partage avis dit exprimé gesagt
    formuliert votre vos ton ta tes notre nos tus nuestro nuestra ihre ihren dein deine
    deinen"""
#: Words of thanks, praise, agreement and courtesy: not content in a filler sentence.
COURTESY_WORDS: Final = FILLER_WORDS | PRAISE_WORDS | frozenset(_COURTESY_TEXT.split())
