"""What the sandbox's videos talk about: two crises the source studies covered, and chatter.

Each topic holds sentences (Spanish and English) and hashtags; a video's description is one
sentence plus a few hashtags, and its speech repeats the sentence, sometimes with a second one,
so transcripts, descriptions and stance have something real to agree on. The crises peak in the
studies' date ranges (Peru 2022-11-20 to 2023-03-01, Ecuador 2023-12-31 to 2024-03-04).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class Topic:
    name: str
    region: str
    neighbours: tuple[str, ...]
    sentences_es: tuple[str, ...]
    sentences_en: tuple[str, ...]
    hashtags: tuple[str, ...]
    generic_share: float = 0.6  # chance of adding fyp/parati-style tags

    def compose(self, rng: random.Random, language: str) -> tuple[str, list[str], list[str]]:
        """A description sentence, its hashtags (no '#') and its @mentions."""
        sentence = rng.choice(self.sentences_es if language == "es" else self.sentences_en)
        tags = rng.sample(self.hashtags, k=min(len(self.hashtags), rng.randint(0, 3)))
        if rng.random() < self.generic_share:
            tags.append(rng.choice(GENERIC_TAGS))
        mentions: list[str] = []
        if rng.random() < 0.05:
            mentions.append(rng.choice(("noticiasperu", "ecuavisa", "rppnoticias", "primiciasec")))
            sentence = f"{sentence} @{mentions[0]}"
        return sentence, list(dict.fromkeys(tags)), mentions

    def speech(self, rng: random.Random, language: str, sentence: str) -> str:
        """What the clip says: the description's sentence, sometimes followed by another."""
        spoken = sentence.split(" @")[0]
        if rng.random() < 0.4:
            pool = self.sentences_es if language == "es" else self.sentences_en
            spoken = f"{spoken} {rng.choice(pool)}"
        return spoken


GENERIC_TAGS = ("fyp", "parati", "foryou", "viral", "foryoupage", "tendencia", "xyzbca")

PERU = Topic(
    name="peru_2022",
    region="PE",
    neighbours=("EC", "BO", "CL"),
    sentences_es=(
        "Pedro Castillo anuncia la disolución temporal del Congreso.",
        "El presidente Castillo fue detenido tras el intento de golpe de estado.",
        "Dina Boluarte juramenta como presidenta del Perú.",
        "Marchas en Lima piden la renuncia de Boluarte.",
        "Apoyamos al presidente Pedro Castillo, el pueblo no se rinde.",
        "Castillo intentó cerrar el Congreso y eso fue un golpe de estado.",
        "Boluarte declara estado de emergencia en todo el país.",
        "Desde Puno exigimos nuevas elecciones y la libertad de Castillo.",
        "La crisis política en Perú deja decenas de muertos en las protestas.",
        "El Congreso vacó a Pedro Castillo por incapacidad moral.",
        "Toque de queda en varias regiones del Perú.",
        "Presidenta Boluarte pide calma y diálogo a los manifestantes.",
    ),
    sentences_en=(
        "Peru's president Pedro Castillo tried to dissolve Congress.",
        "Dina Boluarte is sworn in as Peru's first female president.",
        "Protesters in Lima demand that Boluarte resign.",
        "Castillo was arrested after the failed self coup.",
    ),
    hashtags=(
        "PedroCastillo",
        "Castillo",
        "Boluarte",
        "pedrocastilloperu",
        "golpedeestado",
        "GolpeDeEstado",
        "crisispoliticaenperu",
        "peru",
        "lima",
        "DinaBoluarte",
        "noticias",
    ),
)

ECUADOR = Topic(
    name="ecuador_2024",
    region="EC",
    neighbours=("PE", "CO"),
    sentences_es=(
        "Alias Fito escapó de la cárcel regional de Guayaquil.",
        "Daniel Noboa declara conflicto armado interno en Ecuador.",
        "Los Choneros toman rehenes en las cárceles del país.",
        "Hombres armados irrumpen en un canal de televisión en Guayaquil.",
        "El presidente Noboa decreta estado de excepción por sesenta días.",
        "Caos en Ecuador, cierran escuelas y comercios.",
        "Apoyo total al presidente Noboa contra las bandas.",
        "Crisis carcelaria en Ecuador, los militares entran a las prisiones.",
        "Toque de queda en Quito y Guayaquil desde las once de la noche.",
        "Ecuador bajo ataque, cuídense mucho familia.",
    ),
    sentences_en=(
        "Gang leader Fito escaped from prison in Ecuador.",
        "President Noboa declares an internal armed conflict.",
        "Gunmen stormed a TV studio live on air in Guayaquil.",
    ),
    hashtags=(
        "fito",
        "AliasFito",
        "choneros",
        "LosChoneros",
        "noboa",
        "DanielNoboa",
        "presidentenoboa",
        "SOSEcuador",
        "ecuadorbajoataque",
        "ecuadorencrisis",
        "estadodeguerra",
        "toquedequeda",
        "ecuador",
        "guayaquil",
    ),
)

CHATTER = Topic(
    name="chatter",
    region="PE",
    neighbours=("EC", "CO", "MX", "AR", "US", "ES"),
    sentences_es=(
        "Receta fácil de ceviche para el fin de semana.",
        "Hicimos un castillo de arena gigante en la playa.",
        "Mi gato cuando llego tarde a casa.",
        "Rutina de fitness en casa sin equipos.",
        "Probando la comida callejera de Quito.",
        "El gol de la fecha, qué golazo.",
        "Tutorial de maquillaje para una boda.",
        "Un día en mi vida como estudiante universitaria.",
        "Bailando la canción del momento con mis amigas.",
        "Paisajes increíbles de los Andes al amanecer.",
        "Cómo ahorrar dinero en el supermercado.",
        "La presidenta del club de lectura recomienda este libro.",
    ),
    sentences_en=(
        "Easy ceviche recipe for the weekend.",
        "My cat when I come home late.",
        "Day in my life as a university student.",
        "Sunrise over the Andes, no filter.",
    ),
    hashtags=(
        "comida",
        "receta",
        "gatos",
        "futbol",
        "humor",
        "baile",
        "viajes",
        "maquillaje",
        "fitness",
        "musica",
        "cats",
        "playa",
    ),
    generic_share=0.8,
)

TOPICS = {t.name: t for t in (PERU, ECUADOR, CHATTER)}

PERU_PEAK = (date(2022, 11, 20), date(2023, 3, 1))
ECUADOR_PEAK = (date(2023, 12, 31), date(2024, 3, 4))


def topic_weights(day: date) -> dict[str, float]:
    """How likely each topic is on a day: a crisis dominates its own period."""
    if PERU_PEAK[0] <= day <= PERU_PEAK[1]:
        return {"peru_2022": 0.45, "ecuador_2024": 0.03, "chatter": 0.52}
    if ECUADOR_PEAK[0] <= day <= ECUADOR_PEAK[1]:
        return {"peru_2022": 0.03, "ecuador_2024": 0.45, "chatter": 0.52}
    return {"peru_2022": 0.05, "ecuador_2024": 0.05, "chatter": 0.90}
