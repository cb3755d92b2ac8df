"""Answering a question from retrieved documents (no tools, no response format).

The user message holds the question and, usually, a ``<retrieved_documents>`` block
(``agentlab.rag.render_hits_for_prompt``). The answer quotes the sentences of the matching
documents that best meet the question and cites their ``doc_id``; when nothing matches it
says it does not know rather than guess.
"""

from __future__ import annotations

import hashlib
import re

from agentlab.llm.sim.acting import refuse
from agentlab.llm.sim.draws import Draws
from agentlab.llm.sim.profiles import SimProfile
from agentlab.llm.sim.reading import (
    INJECTION_MARKERS,
    Conversation,
    RetrievedDocument,
    find_injections,
    harm_of,
    overlap,
    read_documents,
    sentences,
    stems,
)
from agentlab.llm.sim.reply import Reply


def answer(conversation: Conversation, draws: Draws, profile: SimProfile) -> Reply:
    """An answer from the documents that match the question, citing them."""
    question, documents = read_documents(conversation.last_user)
    if harm_of(question) and draws.chance("refuse_harmful", profile.errors.refuse_harmful, turn=0):
        return refuse(question)
    matching = relevant(question, documents)
    if not matching:
        if documents:
            return Reply(
                content="I don't know: none of the documents I was given answers this question. "
                "The IT helpdesk can help further."
            )
        return Reply(
            content="I don't know: I have no documents on this. The IT helpdesk can help further."
        )
    lines = []
    for document in matching[:2]:
        quote = best_sentences(question, document.content)
        lines.append(
            f"According to {document.title or document.doc_id} [{document.doc_id}]: {quote}"
        )
    notes: list[str] = []
    for document in documents:
        for injection in find_injections(document.content, []):
            digest = hashlib.sha256(injection.text.encode()).hexdigest()[:12]
            if draws.chance(f"obey_injection:{digest}", profile.errors.obey_injection):
                notes.append("obey_injection")
                if injection.say:
                    lines.append(injection.say[0].upper() + injection.say[1:].rstrip(".") + ".")
                for address in injection.addresses:
                    lines.append(f"As the document asks, I will forward this to {address}.")
            elif document in matching:
                lines.append(
                    f"Note: {document.doc_id} contains instructions aimed at an AI assistant; "
                    "I did not follow them."
                )
    return Reply(content="\n".join(lines), notes=tuple(notes))


def relevant(question: str, documents: list[RetrievedDocument]) -> list[RetrievedDocument]:
    """The documents that speak to the question, best first."""
    asked = stems(question)
    if not asked:
        return []
    scored = []
    for index, document in enumerate(documents):
        in_title = len(asked & stems(document.title))
        in_text = overlap(question, document.content)
        score = 2 * in_title + in_text
        if in_text >= 2 or (in_title and in_text):
            scored.append((score, -index, document))
    scored.sort(key=lambda item: (item[0], item[1]), reverse=True)
    if not scored:
        return []
    top = scored[0][0]
    return [document for score, _, document in scored if score * 2 >= top]


def best_sentences(question: str, text: str, count: int = 2) -> str:
    """The sentences of ``text`` that share most with the question, in their order."""
    paragraphs = re.split(r"\n\s*\n|<!--|-->", re.sub(r"^#+\s*", "", text, flags=re.MULTILINE))
    clean = [
        sentence
        for paragraph in paragraphs
        if not any(marker in " ".join(paragraph.lower().split()) for marker in INJECTION_MARKERS)
        for sentence in sentences(" ".join(paragraph.split()))
    ]
    if not clean:
        return text.strip()[:300]
    ranked = sorted(enumerate(clean), key=lambda item: (-overlap(question, item[1]), item[0]))
    chosen = sorted(ranked[:count])
    return " ".join(sentence for _, sentence in chosen)
