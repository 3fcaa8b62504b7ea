"""Each quality.v2 detector on a crafted turn, and none on a clean one (cue-based ones in
English, Spanish, French and German)."""

from __future__ import annotations

import pytest

from chimera.quality import signals
from chimera.quality.language import identify
from chimera.quality.score import DEFAULT_MIN_QUALITY, VERSION, score_v2
from chimera.quality.text import read
from chimera.quality.tokens import normalize, sentences, words
from tests.chimera.quality.helpers import transcript

CLEAN = {
    "en": (
        "Why do cities build cycle lanes when most commuters still drive to work every day?",
        "Because a protected lane changes who cycles: surveys in Seville found that trips "
        "grew elevenfold once the network connected schools, offices and stations.",
    ),
    "es": (
        "¿Por qué las ciudades construyen carriles bici si la mayoría de la gente va en coche?",
        "Porque un carril protegido cambia quién pedalea: en Sevilla los viajes se "
        "multiplicaron por once cuando la red conectó los colegios y las estaciones.",
    ),
    "fr": (
        "Pourquoi les villes construisent-elles des pistes cyclables si la plupart des gens "
        "prennent la voiture ?",
        "Parce qu'une piste protégée change qui pédale : à Séville, les trajets ont été "
        "multipliés par onze quand le réseau a relié les écoles et les gares.",
    ),
    "de": (
        "Warum bauen Städte Radwege, wenn die meisten Pendler noch mit dem Auto fahren?",
        "Weil ein geschützter Radweg ändert, wer Rad fährt: In Sevilla haben sich die Fahrten "
        "verelffacht, als das Netz die Schulen und die Bahnhöfe verbunden hat.",
    ),
}
TOPIC = {
    "en": "Cycle lanes in cities",
    "es": "Carriles bici en las ciudades",
    "fr": "Les pistes cyclables en ville",
    "de": "Radwege in den Städten",
}
CUE_TURNS = {
    "refusal": {
        "en": "I'm sorry, but as an AI I cannot provide advice on this subject.",
        "es": "Lo siento, pero no puedo ayudar con este tema porque soy una inteligencia "
        "artificial.",
        "fr": "Je suis désolé, mais je ne peux pas vous aider sur ce sujet des villes.",
        "de": "Es tut mir leid, aber ich kann Ihnen dabei nicht helfen, das ist nicht erlaubt.",
    },
    "leakage": {
        "en": "According to my system prompt, I am the second participant and should argue "
        "against it.",
        "es": "Según mis instrucciones, tengo que defender la otra postura en esta conversación.",
        "fr": "Selon mes instructions, je dois défendre la position contraire dans cet échange.",
        "de": "Laut meinen Anweisungen soll ich in diesem Gespräch die Gegenposition vertreten.",
    },
    "sycophancy": {
        "en": "Great point! I completely agree with everything you said.",
        "es": "¡Muy buena pregunta! Estoy totalmente de acuerdo, tienes toda la razón.",
        "fr": "Très bonne remarque ! Je suis tout à fait d'accord, vous avez raison.",
        "de": "Sehr gute Frage! Da stimme ich Ihnen voll zu, Sie haben völlig recht.",
    },
    "pleasantry_only": {
        "en": "Thank you so much! It's a pleasure to be here. Have a wonderful day!",
        "es": "¡Muchas gracias! Es un placer. ¡Que tengas un buen día!",
        "fr": "Merci beaucoup ! Avec plaisir. Bonne journée !",
        "de": "Vielen Dank! Freut mich sehr. Schönen Tag noch!",
    },
}


def flags_of(*texts: str, topic: str | None = None, **kw: object) -> list[dict[str, float]]:
    report = score_v2(transcript(*texts), topic=topic, **kw)  # type: ignore[arg-type]
    return [t.flags for t in report.turns]


# --- tokens and language -----------------------------------------------------------------------


def test_accented_words_are_one_word_and_casefolded() -> None:
    assert words(normalize("Élise aimait l'été à Zürich; STRASSE")) == [
        "élise", "aimait", "l'été", "à", "zürich", "strasse",
    ]  # fmt: skip
    assert sentences(normalize("Es ist so. Wirklich? Ja!\nNeue Zeile")) == [
        "es ist so.", "wirklich?", "ja!", "neue zeile",
    ]  # fmt: skip


@pytest.mark.parametrize("lang", ["en", "es", "fr", "de"])
def test_supported_languages_are_identified(lang: str) -> None:
    conv = read(transcript(*CLEAN[lang]), TOPIC[lang])
    assert conv.language == lang
    assert all(t.language == lang for t in conv.turns)


@pytest.mark.parametrize(
    "text",
    [
        "Il risotto si prepara tostando il riso e aggiungendo il brodo caldo poco alla volta.",
        "Teoria heliocentryczna przyjęła się powoli, bo brakowało dowodów i była sprzeczna z "
        "tradycją.",
        "密码管理器仍然比重复使用密码更安全。建议使用长的主密码并开启双重认证。",
    ],
)
def test_other_languages_are_unsupported(text: str) -> None:
    report = score_v2(transcript(text, text + " Ok."), topic=None)
    assert report.language == "unsupported"
    assert report.flags == ["unsupported_language"]
    assert "sycophancy" in report.not_judged


def test_too_little_text_is_unknown() -> None:
    assert identify(["yes", "no"]) == "unknown"


# --- cue-based detectors, four languages ---------------------------------------------------------


@pytest.mark.parametrize("lang", ["en", "es", "fr", "de"])
def test_a_clean_exchange_carries_no_flag(lang: str) -> None:
    report = score_v2(transcript(*CLEAN[lang]), topic=TOPIC[lang])
    assert [t.flags for t in report.turns] == [{}, {}]
    assert not report.defects
    assert not any(r.startswith("defect:") for r in report.reasons)
    assert report.version == VERSION


@pytest.mark.parametrize("defect", sorted(CUE_TURNS))
@pytest.mark.parametrize("lang", ["en", "es", "fr", "de"])
def test_cue_defects_are_found_in_each_language(defect: str, lang: str) -> None:
    question, answer = CLEAN[lang]
    flags = flags_of(question, CUE_TURNS[defect][lang], question, answer, topic=TOPIC[lang])
    assert defect in flags[1], flags
    assert flags[3] == {}


def test_a_sign_off_closing_a_real_conversation_is_not_pleasantry_only() -> None:
    question, answer = CLEAN["en"]
    flags = flags_of(question, answer, "Thanks, that helps a lot.", "You're welcome!")
    assert flags == [{}, {}, {}, {}]


# --- structural detectors ---------------------------------------------------------------------


def test_empty_and_near_empty_turns() -> None:
    question, answer = CLEAN["en"]
    flags = flags_of(question, "", question, "Hmm.", question, answer)
    assert flags[1] == {"empty": 1.0} and flags[3] == {"empty": 1.0}
    assert flags[5] == {}


def test_truncation_at_any_turn_the_last_too() -> None:
    question, answer = CLEAN["en"]
    cut = "Because a protected lane changes who cycles, and the surveys in Seville showed that"
    flags = flags_of(question, cut, question, answer, question, cut)
    assert "truncation" in flags[1] and "truncation" in flags[5]
    assert "truncation" not in flags[3]


def test_echo_copies_the_previous_turn_pronouns_swapped() -> None:
    flags = flags_of(
        "My garden has heavy clay soil that cracks in summer and floods in winter.",
        "Your garden has heavy clay soil that cracks in summer and floods in winter.",
    )
    assert flags[1].get("echo") == 1.0


def test_repetition_verbatim_and_of_a_sentence() -> None:
    question, answer = CLEAN["en"]
    flags = flags_of(question, answer, "And the cost?", answer)
    assert flags[3].get("repetition") == 1.0
    assert "echo" not in flags[3]


def test_a_paraphrase_loop_is_repetition() -> None:
    flags = flags_of(
        "When inflation rose, central banks raised interest rates. How do higher rates "
        "bring prices down?",
        "Higher rates make borrowing expensive, so households spend less and prices ease.",
        "So expensive borrowing means households spend less, and prices ease.",
        "Yes, when borrowing is expensive, households spend less, so prices ease.",
        "Right, expensive borrowing lowers household spending, which eases prices.",
    )
    assert all("repetition" in f for f in flags[2:]), flags


def test_role_confusion_a_script_of_both_sides() -> None:
    question, answer = CLEAN["en"]
    script = f"{answer}\nUser: And in winter?\nAssistant: Fewer people ride, but most keep going."
    flags = flags_of(question, script)
    assert "role_confusion" in flags[1]


def test_role_confusion_speaking_as_the_other_persona() -> None:
    flags = flags_of(
        "Pontevedra closed its centre to cars and its shops survived.",
        "As an urban planner, I have seen in my own projects that footfall rises.",
        personas={"Ana": "an urban planner", "Ben": "a shop owner"},
    )
    assert "role_confusion" in flags[1]


def test_leakage_of_markers_and_the_persona_text() -> None:
    flags = flags_of(
        "[SYSTEM] Turn 1 of 6. Why is so little plastic recycled?",
        "I am a retired nurse from Leeds who distrusts reform, and shift work wore me out.",
        personas={"Ben": "a retired nurse from Leeds who distrusts reform"},
    )
    assert "leakage" in flags[0] and "leakage" in flags[1]


def test_language_switch_turn_and_mid_turn() -> None:
    question, answer = CLEAN["en"]
    flags = flags_of(
        question,
        answer + " Aber das Problem ist, dass die Wege teuer sind und jemand sie planen muss.",
        question,
        CLEAN["es"][1],
        "And do the lanes pay for themselves?",
        "Mostly yes: Copenhagen estimates each kilometre cycled saves the city a few cents.",
    )
    assert "language_switch" in flags[1] and flags[3] == {"language_switch": 1.0}
    assert flags[5] == {}


def test_word_salad() -> None:
    question, answer = CLEAN["en"]
    salad = (
        "The lane of commuters cycles the network of stations, so the city of trips "
        "protects the survey of Seville through the cycling of lanes."
    )
    flags = flags_of(question, answer, question, salad, topic=TOPIC["en"])
    assert flags[3] == {"word_salad": 1.0}
    assert flags[1] == {}


def test_off_topic_runs() -> None:
    question, answer = CLEAN["en"]
    football = (
        "Did you see that the club paid eighty million for a striker who scored six goals "
        "last season?",
        "Transfer fees have exploded since Neymar moved to Paris for two hundred and "
        "twenty-two million euros.",
    )
    flags = flags_of(question, answer, *football, topic=TOPIC["en"])
    assert flags[2] == {"off_topic": 1.0} and flags[3] == {"off_topic": 1.0}
    assert flags_of(question, answer, *football)[2] == {}  # no topic: neutral


# --- the score ----------------------------------------------------------------------------------


def test_latency_and_providers_do_not_change_the_score() -> None:
    turns = transcript(*CLEAN["en"])
    slow = [t.model_copy(update={"latency_ms": 300_000.0, "provider": "openai"}) for t in turns]
    assert score_v2(turns, topic=None).score == score_v2(slow, topic=None).score


def test_missing_fields_are_neutral_and_unknown_endings_are_not_zero() -> None:
    turns = transcript(*CLEAN["en"])
    bare = score_v2(turns)
    assert "length" not in bare.breakdown
    assert score_v2(turns, ended_reason="something_new").breakdown["ending"] > 0
    short = score_v2(turns, min_turns=4, max_turns=8)
    assert short.breakdown["length"] == 0.5


def test_defects_reject_with_reasons() -> None:
    question, _ = CLEAN["en"]
    report = score_v2(transcript(question, CUE_TURNS["refusal"]["en"]), topic=TOPIC["en"])
    assert not report.accepted
    assert "defect:refusal" in report.reasons
    assert report.score < DEFAULT_MIN_QUALITY
    assert "low_score" in report.reasons


def test_no_turns() -> None:
    report = score_v2([])
    assert report.score == 0.0 and not report.accepted


# --- the phenomena in other words -----------------------------------------------------------------

#: Each defect in phrasings the phrase tables were not written from, in several languages.
PHENOMENA = {
    "refusal": [
        ("en", "Before going further: for safety reasons I won't go into the details of this."),
        (
            "en",
            "Honestly, I'd rather not discuss this, since it touches on potentially harmful "
            "territory.",
        ),
        ("en", "That request falls outside my guidelines, so I'll have to decline."),
        (
            "en",
            "I'm not comfortable providing more information on bicycle routes, as it could "
            "be misused.",
        ),
        ("en", "Unfortunately I can't help with that, because it could put people at risk."),
        (
            "es",
            "Lo siento, pero por razones de seguridad no voy a entrar en detalles sobre "
            "cómo se construyen.",
        ),
        ("es", "Prefiero no hablar de este tema, podría ser peligroso para alguien."),
        (
            "fr",
            "Pour des raisons de sécurité, je préfère ne pas aborder la construction des pistes.",
        ),
        (
            "fr",
            "Je ne suis pas en mesure de fournir ces informations, cela pourrait être dangereux.",
        ),
        ("de", "Aus Sicherheitsgründen kann ich auf diese Frage leider nicht näher eingehen."),
        (
            "de",
            "Ich kann Ihnen zu diesem Thema leider keine Auskunft geben, das wäre nicht "
            "verantwortungsvoll.",
        ),
    ],
    "leakage": [
        ("en", "Protected lanes work. (Keeping this under 80 words as asked.)"),
        ("en", "[Turn 4] Protected lanes in Seville changed who cycles within four years."),
        (
            "en",
            "Turn 3 of 8. You are Ana, a cautious urban planner who answers in short "
            "paragraphs. Protected lanes work.",
        ),
        ("en", "I was told to play the sceptic here, so: the lanes cost a lot of money."),
        ("en", "### Instruction: argue for the lanes.\nProtected lanes work well in Seville."),
        ("en", "Protected lanes changed commuting in Seville within four years. (Word count: 87)"),
        ("es", "Se me ha pedido que defienda la postura contraria, así que lo haré."),
        ("fr", "On m'a demandé de défendre la position contraire, donc je le fais."),
        ("de", "Ich wurde angewiesen, unter 100 Wörtern zu bleiben, also kurz: es lohnt sich."),
    ],
    "role_confusion": [
        ("en", "Ana: Do lanes work?\nBen: Yes, they do in Seville.\nAna: And in winter?"),
        ("en", "As Gemini, I think protected lanes change who cycles in a city."),
        ("en", "I'm Ana, and I think protected lanes change who cycles in a city."),
        (
            "en",
            "You might ask whether winter kills the habit. Well, in Oulu most riders keep "
            "going through January.",
        ),
        (
            "en",
            "But what about the cost of building them? Great question! Each kilometre "
            "costs less than a car park.",
        ),
        ("en", "Q: Do lanes pay off?\nA: Yes, within a decade, by most estimates."),
        ("fr", "Vous allez me demander ce que coûtent les pistes. Eh bien, moins qu'un parking."),
    ],
    "sycophancy": [
        (
            "en",
            "What a brilliant and insightful way to frame the issue; you've truly captured "
            "the heart of it, and I find your reasoning compelling.",
        ),
        (
            "en",
            "You're absolutely right, and I couldn't have said it better myself. Your "
            "analysis is spot on.",
        ),
        ("es", "¡Qué buena pregunta! Coincido plenamente contigo, lo has expresado de maravilla."),
        (
            "fr",
            "Quelle excellente remarque ! Je partage entièrement votre avis, vous l'avez "
            "parfaitement dit.",
        ),
        ("de", "Was für eine großartige Frage! Da haben Sie völlig recht, sehr gut gesagt."),
    ],
    "pleasantry_only": [
        ("es", "¡Hola! ¿Qué tal? Un saludo y que te vaya bien."),
        ("fr", "Bonsoir ! Comment allez-vous ? Bonne continuation et à la prochaine !"),
        ("de", "Guten Abend! Wie geht es Ihnen? Alles Gute und bis später!"),
    ],
    "word_salad": [
        ("en", "Lanes the of cycling and or the network Seville through and the."),
        (
            "en",
            "Cycling purple the lane and of the whisper, network an of the the municipal moon and.",
        ),
        ("es", "Los carril el y de bici las y ciudad los coche de la y, el y las sevilla de y."),
        ("fr", "Les pistes du et des vélo la ville du et, des ou du gares les écoles des et du."),
        ("de", "Die Radwege und oder der Stadt einem und, das Netz eines oder und Schulen einem."),
    ],
}


@pytest.mark.parametrize(
    ("defect", "lang", "text"),
    [(d, lang, text) for d, cases in PHENOMENA.items() for lang, text in cases],
)
def test_phenomena_are_found_in_other_words(defect: str, lang: str, text: str) -> None:
    question, answer = CLEAN[lang]
    flags = flags_of(question, text, question, answer, topic=TOPIC[lang])
    assert defect in flags[1], flags
    assert flags[3] == {}


def test_a_refusal_after_good_turns_is_found_and_weighs_its_share() -> None:
    question, answer = CLEAN["en"]
    flags = flags_of(
        question,
        answer,
        "Does it last through winter, when the days are dark and the roads icy?",
        "Mostly: Oulu grits its lanes first, and two thirds of its summer riders keep going "
        "through January. The kerb design matters more than the weather. That said, I'd "
        "rather not go into how the kerbs are engineered, for safety reasons.",
        topic=TOPIC["en"],
    )
    assert flags[:3] == [{}, {}, {}]
    assert 0.3 <= flags[3]["refusal"] < 1.0


def test_a_restated_turn_is_repetition_however_long() -> None:
    flags = flags_of(
        "Congestion charges cut traffic because drivers weigh the daily fee against buses, "
        "trains and cycling, and many switch when the fee rises above parking costs.",
        "Stockholm saw traffic fall a fifth after its trial, and the drop lasted after the "
        "referendum made the charge permanent.",
        "Drivers weigh the daily fee against buses, trains and cycling; when the fee rises "
        "above parking costs, many switch, which is how congestion charges cut traffic.",
        topic="Congestion charges",
    )
    assert "repetition" in flags[2] and flags[1] == {}


#: Clean conversations that use the cue words as their subject, agree strongly with
#: content, and speak of policies, instructions and safety: none may carry a flag.
CLEAN_CONVERSATIONS = [
    (
        "Workplace safety policy\nLadders, inspections and who is responsible",
        [
            "Our safety policy says nobody can stand on the top step of a ladder, and I think "
            "that rule is sensible.",
            "I can't stress enough how much those instructions matter: most falls in "
            "warehouses happen from ladders, according to the inspectors.",
            "I can't help thinking the policy is too vague about who checks the ladders, "
            "though. Who signs off on them?",
            "The site manager does, weekly. I agree completely that vague rules are harmful, "
            "which is why our checklist names a person, a date and the exact equipment.",
            "That's a fair point about naming people. The union said the same when the policy "
            "was drafted in 2019, and accidents fell by a third afterwards.",
            "You're right, and the data back it: a named inspector makes the checks happen, "
            "whereas a generic rule leaves everyone assuming someone else did it.",
        ],
    ),
    (
        "Prompt injection and chatbot security\nHow attackers manipulate chatbots through "
        "their instructions, and what developers and vendors can do",
        [
            "If the system prompt of a customer chatbot leaks, attackers learn which rules to "
            "work around.",
            "Right, and that is why vendors tell developers never to put secrets in the "
            "instructions; the model may repeat them when asked cleverly.",
            "I can't provide a universal fix, but separating the tools' permissions from the "
            "text the chatbot reads removes most of the damage attackers can do.",
            "Exactly. Least privilege is older than chatbots, and it still works: a bot that "
            "cannot issue refunds cannot be tricked into issuing one.",
            "As an AI researcher, I would add that a chatbot acting as an AI assistant for "
            "refunds should need a human to approve anything above a small amount.",
        ],
    ),
    (
        "Should cities ban cars?\nCar-free centres, shops, deliveries and low-emission zones",
        [
            "You might think a ban hurts shops, but the footfall data from Pontevedra say "
            "otherwise: retail vacancies fell after the centre closed to cars.",
            "As Ben said last week, deliveries are the hard part; Pontevedra allows vans "
            "before eleven in the morning, and that compromise kept the shops supplied.",
            "I am not sure that scales to Madrid. Large cities have far more freight, and the "
            "morning window would be jammed within a month.",
            "Madrid tried a low-emission zone instead, and the courts annulled it twice on "
            "procedural grounds, not because it failed to cut pollution.",
            "I'm afraid I have to disagree: the zone was reinstated in 2021, and I can't see "
            "any safety or policy reason the courts would object to the new one.",
        ],
    ),
    (
        "Política de seguridad en el trabajo",
        [
            "Nuestra política de seguridad dice que nadie puede subirse al último peldaño de "
            "una escalera, y me parece una norma sensata.",
            "No puedo dejar de pensar que la norma es demasiado vaga sobre quién revisa las "
            "escaleras. ¿Quién firma las revisiones?",
            "El jefe de obra, cada semana. Estoy de acuerdo en que las normas vagas son "
            "peligrosas, por eso nuestra lista nombra a una persona, una fecha y el equipo.",
            "Tienes razón, y los datos lo confirman: desde 2019 los accidentes bajaron un "
            "tercio porque alguien concreto hace las comprobaciones de las escaleras.",
        ],
    ),
    (
        "Sicherheitsrichtlinien am Arbeitsplatz",
        [
            "Unsere Sicherheitsrichtlinie verbietet, auf die oberste Stufe einer Leiter zu "
            "steigen, und ich halte die Regel für vernünftig.",
            "Ich kann nicht verstehen, warum die Regel so vage ist, wer die Leitern prüft. Wer "
            "unterschreibt die Kontrollen?",
            "Der Bauleiter, jede Woche. Ich stimme Ihnen zu, dass vage Regeln gefährlich sind, "
            "deshalb nennt unsere Liste eine Person, ein Datum und das genaue Gerät.",
            "Da haben Sie recht, und die Zahlen bestätigen es: Seit 2019 sind die Unfälle um "
            "ein Drittel gesunken, weil eine bestimmte Person die Kontrollen macht.",
            "Die Leute, die in der Halle arbeiten, wissen das auch, und die, die es nicht "
            "wissen, werden ein oder zwei Tage lang geschult.",
        ],
    ),
    (
        "La sécurité au travail et les échelles",
        [
            "Notre politique de sécurité interdit de monter sur la dernière marche d'une "
            "échelle, et je trouve cette règle raisonnable.",
            "Je ne peux pas m'empêcher de penser que la règle est trop vague sur qui vérifie "
            "les échelles. Qui signe les contrôles ?",
            "Le chef de chantier, chaque semaine. Je suis d'accord que les règles vagues sont "
            "dangereuses, c'est pourquoi notre liste nomme une personne et une date.",
            "Vous avez raison, et les chiffres le confirment : depuis 2019 les accidents sur "
            "les échelles ont baissé d'un tiers, une ou deux chutes par an au plus.",
        ],
    ),
]


@pytest.mark.parametrize(("topic", "texts"), CLEAN_CONVERSATIONS)
def test_clean_conversations_on_touchy_words_carry_no_flag(topic: str, texts: list[str]) -> None:
    report = score_v2(transcript(*texts), topic=topic)
    assert [t.flags for t in report.turns] == [{}] * len(texts)
    assert report.accepted, report.reasons


@pytest.mark.parametrize("lang", ["en", "es", "fr", "de"])
def test_clean_prose_is_never_word_salad(lang: str) -> None:
    texts = [t for _, ts in CLEAN_CONVERSATIONS for t in ts] + list(CLEAN[lang])
    for text in texts:
        conv = read(transcript(text, text), None)
        assert signals.broken_structure(conv.turns[0], lang) < 2, text


def test_prose_without_function_words_is_word_salad_but_a_list_is_not() -> None:
    question, answer = CLEAN["en"]
    salad = (
        "Municipal bicycle infrastructure paradigm synergy, quantum commuter velocity "
        "protected lanes Seville elevenfold network stations schools offices moonlight."
    )
    listing = (
        "- Seville: protected lanes, elevenfold growth\n- Copenhagen: green waves, bridges\n"
        "- Utrecht: parking garages, stations, schools\n- Oulu: winter gritting, snow clearing."
    )
    assert flags_of(question, salad, question, answer, topic=TOPIC["en"])[1] == {"word_salad": 1.0}
    assert flags_of(question, answer, "Which cities did it first?", listing)[3] == {}
    code = (
        "Here is the count, per city: ```python\nlanes = load_csv(path)\n"
        "growth = lanes.groupby(city).trips.pct_change()\nprint(growth.tail(10))\n```"
    )
    links = (
        "Sources: https://www.sevilla.org/bici/informe-2023.pdf, https://data.oulu.fi/winter-"
        "cycling/counts.csv, https://www.kk.dk/cykelregnskab and https://example.org/lanes."
    )
    flags = flags_of(question, answer, "Which data?", code, "And sources?", links)
    assert "word_salad" not in flags[3] and "word_salad" not in flags[5], flags
