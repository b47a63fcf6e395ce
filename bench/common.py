"""Shared by the benchmarks: a news-like corpus generator, percentiles, and the machine line."""

from __future__ import annotations

import os
import platform
import random
import socket
import statistics
from pathlib import Path

from rag.documents import clean_text

REPO = Path(__file__).resolve().parent.parent
SEEDS = REPO / "seeds"

# Seed-retrieval questions and the sentence each must find (also in tests/test_retrieval.py).
SEED_QUESTIONS = [
    ("Which town did the Russian Defense Ministry say it retook?", "announcing Thursday the retaking of Sudzha"),
    ("How many Ukrainian soldiers surrendered, according to Gerasimov?", "430 Ukrainian soldiers had surrendered"),
    ("What share of the captured territory did Russia say it had regained?", "regained over 86% of the territory"),
    ("Who is the Kremlin spokesman?", "Kremlin spokesman Dmitry Peskov"),
    ("How many Russian assaults did Ukrainian troops fight off?", "fought off eight Russian assaults"),
    ("Where did Steve Witkoff's plane land?", "landed in Moscow on Thursday"),
    ("Which foreign troops did Russia deploy to the Kursk region?", "North Korean troops"),
    ("What are Russia's terms for a peace deal?", "shutting Ukraine out of NATO"),
    ("When did Ukraine's offensive into Kursk begin?", "offensive into Kursk began in August"),
    ("What condition might the Kremlin demand for a ceasefire?", "halt to U.S. military aid"),
]

_PLACES = ["Kharkiv", "Odesa", "Lyon", "Valencia", "Gdansk", "Tbilisi", "Porto", "Riga", "Naples", "Izmir",
           "Leipzig", "Cluj", "Bergen", "Malmo", "Split", "Brno", "Turin", "Seville", "Tampere", "Ghent"]
_PEOPLE = ["the mayor", "the finance minister", "a union leader", "the central bank governor", "the coach",
           "a company spokeswoman", "the prosecutor", "the health minister", "local officials", "the regulator"]
_TOPICS = ["flood defences", "a rail strike", "grain exports", "a bank merger", "hospital waiting lists",
           "a football transfer", "wind farm permits", "a corruption trial", "school funding", "port traffic"]
_VERBS = ["announced", "criticised", "defended", "postponed", "approved", "questioned", "welcomed", "rejected"]


def generated_articles(count: int, seed: int = 7) -> list[tuple[str, str]]:
    """(document id, text) pairs of plausible news copy, several paragraphs each."""
    rng = random.Random(seed)
    articles = []
    for number in range(count):
        place, topic = rng.choice(_PLACES), rng.choice(_TOPICS)
        paragraphs = []
        for _ in range(rng.randint(6, 10)):
            sentences = []
            for _ in range(rng.randint(1, 3)):
                figure = rng.randint(2, 980)
                sentences.append(
                    f"In {rng.choice(_PLACES)}, {rng.choice(_PEOPLE)} {rng.choice(_VERBS)} plans on "
                    f"{rng.choice(_TOPICS)} on {rng.choice(['Monday', 'Tuesday', 'Friday', 'Sunday'])}, "
                    f"saying {figure} people and {rng.randint(2, 60)} firms in {place} would be affected."
                )
            paragraphs.append(" ".join(sentences))
        articles.append((f"gen-{number:06d}", f"{topic.capitalize()} in {place}\n\n" + "\n\n".join(paragraphs)))
    return articles


def seed_texts() -> list[tuple[str, str]]:
    return [(p.stem, p.read_text(encoding="utf-8")) for p in sorted(SEEDS.glob("*.txt"))]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def p50(values: list[float]) -> float:
    return statistics.median(values)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def machine() -> str:
    with open("/proc/cpuinfo") as cpuinfo:
        model = next((l.split(":", 1)[1].strip() for l in cpuinfo if l.startswith("model name")), "?")
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({model}), {memory_gib:.0f} GiB, Python {platform.python_version()}"


def canonical(text: str) -> str:
    return clean_text(text).text
