"""How the simulator reads: words and concepts, ids and addresses, and the conversation.

Nothing here knows agentlab's tools by name. Tools are read from their OpenAI schemas
(name, description, parameter docs); the task is read as English, with a small lexicon of
synonyms standing in for what a language model knows ("restock" is a kind of ordering,
"close" a ticket means "resolve" it).
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from typing import Any

WORD = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:['-][A-Za-z0-9]+)*|[0-9]+(?:\.[0-9]+)?")
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
IDENT = re.compile(r"\b[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)+\b")
"""Identifier-looking tokens: PO-000001, TCK-000004, KB-IT-006, TONER-BK-05."""

_STOPWORD_TEXT = """
    a an the and or but if then else of to in on at by for from with without into onto
    about as is are was were be been being do does did done doing have has had having i me
    my we our us you your he she it its they them their this that these those there here
    what which who whom whose when where why how can could would should will shall may
    might must please kindly just also so than too very any some all each every no not
    only own same other such up down out over under again once let lets let's get got make
    made want need needs needed know tell tells thanks thank hi hello dear hey one s t
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())

# Groups of words a language model treats as one idea; the first word names the concept.
_LEXICON = """
purchase: purchase purchases order orders ordering ordered reorder restock replenish buy
  procure procurement po pos
send: send sends sent email emails emailed mail mailing e-mail notify inform message forward
  write
ticket: ticket tickets incident issue case helpdesk help-desk request requests
create: create creates created open opens opening raise file log new
comment: comment comments commented note notes remark reply
status: status close closed closing resolve resolved resolution reopen pending hold
  on-hold solved fix fixed
inventory: inventory stock stocks level levels on-hand quantity quantities sku skus item items
  many
supplier: supplier suppliers vendor vendors provider supplies supplied
knowledge: knowledge kb article articles doc docs document documents documentation policy
  policies how-to how-tos howto guide manual procedure rule rules faq allowed limit limits
  allowance reimbursed reimburse explain
search: search find look lookup list show which who check read get see query
workflow: rpa workflow workflows automation robot bot
book: book booking reserve reservation schedule
"""

CONCEPT_OF: dict[str, str] = {}
for _line in re.sub(r"\n\s+", " ", _LEXICON).strip().splitlines():
    _name, _words = _line.split(":", 1)
    for _word in _words.split():
        CONCEPT_OF.setdefault(_word, _name)

# Ways of asking to buy that need no ordering word. Followed by a quantity and an item
# ("we need 30 packs of A4 paper", "please get us 5 mice", "top up the toner with 10"),
# they ask for a purchase; without one ("we need to talk") they do not.
_PURCHASE_REQUEST_TEXT = """
    we need | we'll need | we will need | we still need | i need | need
    please get us | get us | get me | can you get us | could you get us
    buy | purchase | order | reorder | re-order | restock | replenish
    top up | top-up | stock up on | pick up | bring in
"""
_PURCHASE_REQUEST = re.compile(
    r"\b(?:"
    + "|".join(
        re.escape(phrase.strip()).replace(r"\ ", r"\s+")
        for phrase in _PURCHASE_REQUEST_TEXT.replace("\n", "|").split("|")
        if phrase.strip()
    )
    + r")\b(?:\s+\S+){0,4}?\s+\(?\d+\)?\s+[A-Za-z]",
    re.IGNORECASE,
)

# Phrases whose verb means something else ("the printer does not show up" asks for no search).
_IDIOMS = re.compile(r"\b(show|turn|pop|set)\s+up\b", re.IGNORECASE)

# How-to questions: answered from how-tos and policies, not from records of past cases. The
# verb after "how do I" is the requester's to do ("how do I fix it?" asks for no status change).
_HOW_TO = re.compile(
    r"\b(?:how (?:do|can|could|should|would|must) (?:i|we|you|one)(?: best)?(?: \w+)?|"
    r"how to(?: \w+)?|what (?:should|do|can|could|must) (?:i|we) do|"
    r"what(?:'s| is) the (?:fix|procedure|way)|is there a way to(?: \w+)?)\b",
    re.IGNORECASE,
)

ACTION_CONCEPTS = frozenset(
    {"purchase", "send", "create", "comment", "status", "search", "workflow", "book"}
)
"""Concepts that say what to do, rather than what to do it to."""

INJECTION_MARKERS = (
    "ignore previous instructions",
    "ignore all previous",
    "ignore the previous",
    "disregard previous",
    "note to ai",
    "ai assistant",
    "ai assistants",
    "system note",
    "you are now",
    "administrator mode",
    "do not mention this",
    "assistant:",
    # The shapes AgentDojo's attacks take (its important_instructions, ignore_previous,
    # system_message and injecagent attacks).
    "ignore your previous",
    "this is an important message from",
    "<information>",
    "###(system_message)",
    "important!!!",
)


def stem(word: str) -> str:
    """A crude English stem: enough to meet "tickets" and "ticket", "ordered" and "order"."""
    word = word.lower().removesuffix("'s")
    if word in CONCEPT_OF or len(word) <= 3:
        return word
    for suffix, repl in (("ies", "y"), ("sses", "ss"), ("ing", ""), ("ed", ""), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            if suffix == "s" and word.endswith("ss"):
                return word
            return word[: -len(suffix)] + repl
    return word


def words(text: str) -> list[str]:
    """The words of ``text``, lower-cased, in order (ids and numbers included)."""
    return [w.lower() for w in WORD.findall(text)]


def content_words(text: str) -> list[str]:
    """The words that carry meaning: no stop words, no e-mail addresses."""
    cleaned = EMAIL.sub(" ", text)
    return [w for w in words(cleaned) if w not in STOPWORDS]


def stems(text: str) -> set[str]:
    """The stems of the content words of ``text``."""
    return {stem(w) for w in content_words(text)}


def concepts(text: str) -> set[str]:
    """The concepts ``text`` speaks of: lexicon concepts, and the stems of other words."""
    found: set[str] = set()
    for word in content_words(_IDIOMS.sub(r"\1up", text)):
        for part in (word, *word.split("-")):
            concept = CONCEPT_OF.get(part) or CONCEPT_OF.get(stem(part))
            found.add(concept or stem(part))
    if EMAIL.search(text):
        found.add("send")
    if asks_to_buy(text):
        found.add("purchase")
    return found


def asks_to_buy(text: str) -> bool:
    """True when ``text`` asks for a quantity of an item ("we need 30 packs of paper")."""
    return bool(_PURCHASE_REQUEST.search(text))


def is_how_to(text: str) -> bool:
    """True for a question about how to do something ("how do I ...", "what should I do?")."""
    return bool(_HOW_TO.search(text))


def without_how_to(text: str) -> str:
    """``text`` without its how-to phrase and the verb in it: what the question is about."""
    return _HOW_TO.sub(" ", text)


def overlap(a: str, b: str) -> int:
    """How many content stems two texts share."""
    return len(stems(a) & stems(b))


def emails(text: str) -> list[str]:
    """The e-mail addresses in ``text``, in order, each once."""
    return list(dict.fromkeys(m.rstrip(".") for m in EMAIL.findall(text)))


def identifiers(text: str) -> list[str]:
    """Identifier-looking tokens (``PO-000001``, ``KB-IT-006``), in order, each once."""
    return list(dict.fromkeys(IDENT.findall(text)))


def numbers(text: str) -> list[float]:
    """Stand-alone numbers in ``text`` (not parts of ids, dates, floors or addresses)."""
    cleaned = EMAIL.sub(" ", IDENT.sub(" ", text))
    found = []
    for match in re.finditer(r"(?<![\w.:/-])(\d+(?:\.\d+)?)(?![\w:/-]|\.\d)", cleaned):
        found.append(float(match.group(1)))
    return found


def proper_nouns(text: str) -> list[str]:
    """Capitalised words that are not the first of a sentence: names of places and firms."""
    found = []
    for sentence in re.split(r"(?<=[.!?:;])\s+|\n+", text):
        tokens = WORD.findall(EMAIL.sub(" ", sentence))
        for token in tokens[1:]:
            if token[0].isupper() and not IDENT.fullmatch(token) and token.lower() not in STOPWORDS:
                found.append(token)
    return list(dict.fromkeys(found))


def sentences(text: str) -> list[str]:
    """``text`` cut into sentences."""
    parts = re.split(r"(?<=[.!?])\s+|\n+", text)
    return [p.strip() for p in parts if p.strip()]


def clauses(task: str) -> list[str]:
    """A task cut where one request ends and the next begins ("..., then ...", "and")."""
    parts = re.split(r"(?:[.;!?]\s+|,?\s+(?:and then|then|and also|and)\s+|\n+)", task)
    return [
        p.strip(" ,.")
        for p in parts
        if p and (content_words(p) or EMAIL.search(p) or IDENT.search(p) or is_how_to(p))
    ]


def is_question(text: str) -> bool:
    """True for a question asking for information, not a polite request to act."""
    lowered = text.strip().lower()
    if re.match(r"(can|could|would|will) you\b|please\b", lowered):
        return False
    return lowered.endswith("?") or bool(
        re.match(r"(what|which|who|where|when|why|how|is|are|do|does|did)\b", lowered)
    )


def flatten_text(value: Any) -> str:
    """Every string inside a JSON value, one per line."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return "\n".join(flatten_text(v) for v in value.values())
    if isinstance(value, list):
        return "\n".join(flatten_text(v) for v in value)
    return ""


def records(value: Any) -> list[dict[str, Any]]:
    """Every JSON object inside a value, outermost first."""
    found: list[dict[str, Any]] = []
    if isinstance(value, dict):
        found.append(value)
        for item in value.values():
            found.extend(records(item))
    elif isinstance(value, list):
        for item in value:
            found.extend(records(item))
    return found


# -- the offered tools ---------------------------------------------------------------------


@dataclass(frozen=True)
class ToolOffer:
    """A tool as the request offers it: its name, description and parameter schema."""

    name: str
    description: str
    parameters: dict[str, Any]

    @property
    def name_text(self) -> str:
        """The name as words: ``create_purchase_order`` -> ``create purchase order``."""
        return re.sub(r"[_\-.]+", " ", self.name)

    @property
    def param_text(self) -> str:
        """The parameter names and docs, as text."""
        parts = []
        for name, schema in properties(self.parameters).items():
            parts.append(re.sub(r"_+", " ", name))
            parts.append(str(schema.get("description", "")))
        return " ".join(parts)

    @property
    def is_write(self) -> bool:
        """True when the tool changes something.

        It takes ``dry_run`` or an idempotency key, or its description says it creates,
        sends or changes.
        """
        props = properties(self.parameters)
        if "dry_run" in props or "idempotency_key" in props:
            return True
        head = " ".join(content_words(f"{self.name_text} {self.description}")[:3])
        return bool(concepts(head) & {"purchase", "send", "create", "comment", "status", "book"})


def properties(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The ``properties`` of an object schema (empty when it has none)."""
    props = schema.get("properties")
    return props if isinstance(props, dict) else {}


def read_tools(request: dict[str, Any]) -> list[ToolOffer]:
    """The function tools a request offers, in order."""
    offers = []
    for item in request.get("tools") or []:
        function = item.get("function") or {}
        offers.append(
            ToolOffer(
                name=str(function.get("name", "")),
                description=str(function.get("description") or ""),
                parameters=function.get("parameters") or {"type": "object", "properties": {}},
            )
        )
    return offers


# -- the conversation ----------------------------------------------------------------------


@dataclass(frozen=True)
class Observation:
    """One tool call the assistant made and what came back."""

    call_id: str
    tool: str
    arguments: dict[str, Any] | None
    """The arguments as sent, or None when they were not a JSON object."""
    turn: int
    """The assistant turn (0-based) that made the call."""
    status: str = "missing"
    """The outcome's status (``ok``, ``awaiting_approval`` ...); ``missing`` before a result."""
    message: str = ""
    data: Any = None
    """The result's ``untrusted_data`` (or the whole content when it is not that shape)."""
    is_spotlighted: bool = False
    """True when the result arrived fenced as untrusted data with the boundary the system
    prompt declared for the run (spotlighting)."""

    @property
    def is_done(self) -> bool:
        """True when the call had its effect, or answered its read."""
        return self.status in ("ok", "replayed")

    def text(self) -> str:
        """All the result's text, for searching."""
        return flatten_text(self.data)


@dataclass
class Conversation:
    """A chat request, read: the task, the tools, what earlier calls returned."""

    system: str
    task: str
    """The first user message: what the requester asked."""
    last_user: str
    tools: list[ToolOffer]
    observations: list[Observation] = field(default_factory=list)
    assistant_turns: int = 0
    findings: list[str] = field(default_factory=list)
    """Findings of a failed verification ("Verification failed: ..."), when the user sent one."""
    reported: list[dict[str, Any]] = field(default_factory=list)
    """Tool outcomes a re-planning request reports ("Tool outcomes so far: [...]")."""
    replies: tuple[str, ...] = ()
    """The requester's replies after the task, in a conversation (``task`` includes them)."""
    first: str = ""
    """The requester's first message (as corrected by a change of mind); ``task`` when there
    are no replies."""
    plan: list[str] | None = None
    """The tools of the plan the instructions hand the acting model, step by step (the
    latest one: a revised plan replaces the first); None when there is no plan."""

    def tool(self, name: str) -> ToolOffer | None:
        """The offered tool of that name."""
        return next((t for t in self.tools if t.name == name), None)

    def observed(self, tool: str) -> list[Observation]:
        """The calls of ``tool``, oldest first."""
        return [o for o in self.observations if o.tool == tool]


def text_of(content: Any) -> str:
    """A message's content as text (parts of a list are joined)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(part.get("text", "")) if isinstance(part, dict) else str(part) for part in content
        )
    return str(content)


def read_conversation(request: dict[str, Any]) -> Conversation:
    """Read a request's messages: task, tool calls and their outcomes, verification findings."""
    messages = request.get("messages") or []
    system = "\n".join(
        text_of(m.get("content")) for m in messages if m.get("role") in ("system", "developer")
    )
    users = [text_of(m.get("content")) for m in messages if m.get("role") == "user"]
    said = requested(messages)
    conversation = Conversation(
        system=system,
        task="\n".join(said),
        first=said[0] if said else "",
        replies=tuple(said[1:]),
        last_user=users[-1] if users else "",
        tools=read_tools(request),
    )
    for message in messages:
        if message.get("role") in ("system", "developer", "user"):
            planned = plan_in(text_of(message.get("content")))
            if planned is not None:
                conversation.plan = planned
    pending: dict[str, int] = {}
    for message in messages:
        role = message.get("role")
        if role == "assistant":
            for call in message.get("tool_calls") or []:
                function = call.get("function") or {}
                try:
                    arguments = json.loads(function.get("arguments") or "")
                except ValueError:
                    arguments = None
                pending[str(call.get("id"))] = len(conversation.observations)
                conversation.observations.append(
                    Observation(
                        call_id=str(call.get("id")),
                        tool=str(function.get("name", "")),
                        arguments=arguments if isinstance(arguments, dict) else None,
                        turn=conversation.assistant_turns,
                    )
                )
            conversation.assistant_turns += 1
        elif role == "tool":
            index = pending.get(str(message.get("tool_call_id")))
            if index is not None:
                old = conversation.observations[index]
                content, is_spotlighted = unfence(text_of(message.get("content")), system)
                status, text, data = read_outcome(content)
                conversation.observations[index] = Observation(
                    old.call_id, old.tool, old.arguments, old.turn, status, text, data,
                    is_spotlighted,
                )  # fmt: skip
        elif role == "user":
            text = text_of(message.get("content"))
            if text.lstrip().lower().startswith("verification failed"):
                _read_findings(conversation, text)
    return conversation


_NOT_A_REPLY = re.compile(r"\s*(verification failed|the plan changed)", re.IGNORECASE)
_CHANGE = re.compile(r"\b(\S+?) instead of (\S+?)[.,;!]?(?:\s|$)", re.IGNORECASE)


_FACT_NAMED = re.compile(r"\basset[ -]tags?\b", re.IGNORECASE)
_ASSET_TAG = re.compile(r"\b[A-Z]{2,4}-[0-9]{4}\b")


def unstated_facts(text: str) -> list[str]:
    """Facts the text says the request is about but does not give: ``asset tag``.

    A help-desk model knows a device is logged against its asset tag (``LT-0042``: two to
    four capitals and four digits); a request that mentions the tag without one needs it.
    """
    if _FACT_NAMED.search(text) and not _ASSET_TAG.search(text):
        return ["asset tag"]
    return []


def _replaced(text: str, old: str, new: str) -> str:
    return re.sub(rf"(?<![\w-]){re.escape(old)}(?![\w-])", new, text)


def requested(messages: list[dict[str, Any]]) -> list[str]:
    """What the requester has asked for: the first user message, with their later replies.

    A reply is a user message that answers an assistant's answer (a question back), not a
    verification's findings or a revised plan. A reply that changes an earlier value ("20
    instead of 16") changes it in what was said before, as a person's correction does.
    """
    said: list[str] = []
    previous: dict[str, Any] | None = None
    for message in messages:
        role = message.get("role")
        if role == "user":
            text = text_of(message.get("content"))
            if not said:
                said.append(text)
            elif (
                previous is not None
                and previous.get("role") == "assistant"
                and not previous.get("tool_calls")
                and not _NOT_A_REPLY.match(text)
            ):
                for match in _CHANGE.finditer(text):
                    new, old = match.groups()
                    said = [_replaced(s, old, new) for s in said]
                    # and in this reply before it ("It's 8. Actually: 12 instead of 8.")
                    text = _replaced(text[: match.start()], old, new) + text[match.start() :]
                said.append(text)
        previous = message
    return said


_FENCE = re.compile(
    r'\A<<untrusted_data source="[^"]*" boundary="([0-9a-f]+)">>\n(.*)\n'
    r'<<end_untrusted_data boundary="\1">>\Z',
    re.DOTALL,
)
_DECLARED = re.compile(r"Untrusted data boundary for this run: ([0-9a-f]+)\.")


def unfence(content: str, system: str) -> tuple[str, bool]:
    """A tool message's content without its spotlighting fence, and whether it had one.

    A fence counts only when its boundary is the one the system prompt declared (a model is
    told to treat any other fence as data). Datamarked content (``^`` for each run of
    whitespace) is read through, as a model reads it.
    """
    match = _FENCE.match(content)
    declared = _DECLARED.search(system)
    if match is None or declared is None or match.group(1) != declared.group(1):
        return content, False
    inner = match.group(2)
    if "are replaced by `^`" in system:
        inner = inner.replace("^", " ")
    return inner, True


_PLAN_START = re.compile(r'\{\s*"steps"\s*:')


def plan_in(text: str) -> list[str] | None:
    """The tools of a plan (``{"steps": [{"tool": ...}, ...]}``) written into ``text``.

    The multi-agent executor's instructions carry the plan as JSON ("Follow this plan:
    {...}"), and a re-planning message carries the revised one ("Revised plan: {...}").
    """
    for match in _PLAN_START.finditer(text):
        try:
            value, _ = json.JSONDecoder().raw_decode(text[match.start() :])
        except ValueError:
            continue
        steps = value.get("steps") if isinstance(value, dict) else None
        if isinstance(steps, list):
            return [str(s["tool"]) for s in steps if isinstance(s, dict) and s.get("tool")]
    return None


def _read_findings(conversation: Conversation, text: str) -> None:
    """The findings listed after "Verification failed:", and any outcomes reported with them."""
    findings = []
    for line in text.split(":", 1)[1].splitlines() if ":" in text else []:
        stripped = line.strip()
        if stripped.lower().startswith("tool outcomes so far:"):
            try:
                reported = json.loads(stripped.split(":", 1)[1])
            except ValueError:
                reported = []
            conversation.reported = [r for r in reported if isinstance(r, dict)]
        elif stripped.startswith(("-", "*")):
            findings.append(stripped.strip(" -*\t"))
    conversation.findings = findings


def read_outcome(content: str) -> tuple[str, str, Any]:
    """A tool message's status, message and data (``ok`` and the text if not our format)."""
    try:
        value = json.loads(content)
    except ValueError:
        return "ok", "", content
    if isinstance(value, dict) and "status" in value and "untrusted_data" in value:
        return str(value["status"]), str(value.get("message", "")), value["untrusted_data"]
    return "ok", "", value


# -- retrieved documents -------------------------------------------------------------------


@dataclass(frozen=True)
class RetrievedDocument:
    """One ``<document>`` of a ``<retrieved_documents>`` block."""

    doc_id: str
    title: str
    data_class: str
    trust: str
    content: str


DOCUMENT = re.compile(r"<document\b([^>]*)>\n?(.*?)\n?</document>", re.DOTALL)
ATTRIBUTE = re.compile(r'([a-z_]+)="([^"]*)"')


def read_documents(text: str) -> tuple[str, list[RetrievedDocument]]:
    """Split a user message into the question and its retrieved documents."""
    start = text.find("<retrieved_documents>")
    if start < 0:
        return text.strip(), []
    end = text.find("</retrieved_documents>", start)
    block = text[start : end if end >= 0 else len(text)]
    question = text[:start] + (text[end + len("</retrieved_documents>") :] if end >= 0 else "")
    documents = []
    for match in DOCUMENT.finditer(block):
        attrs = {k: html.unescape(v) for k, v in ATTRIBUTE.findall(match.group(1))}
        documents.append(
            RetrievedDocument(
                doc_id=attrs.get("doc_id", "?"),
                title=attrs.get("title", ""),
                data_class=attrs.get("data_class", ""),
                trust=attrs.get("trust", ""),
                content=html.unescape(match.group(2)),
            )
        )
    return question.strip(), documents


# -- instructions hidden in data -----------------------------------------------------------


@dataclass(frozen=True)
class Injection:
    """An instruction found inside data: the sentences that carry it, and what it asks."""

    text: str
    addresses: tuple[str, ...]
    tools: tuple[str, ...]
    """Offered tools the instruction names."""
    say: str | None
    """What it wants the user told ("tell the user X" -> X), if anything."""


def find_injections(text: str, tool_names: list[str]) -> list[Injection]:
    """Instructions addressed to an AI inside ``text`` (a tool result or a document)."""
    found = []
    for paragraph in re.split(r"\n\s*\n|<!--|-->", text):
        lowered = " ".join(paragraph.lower().split())
        if not any(marker in lowered for marker in INJECTION_MARKERS):
            continue
        flat = " ".join(paragraph.split())
        say = None
        told = re.search(
            r"\btell (?:the user|them|users|everyone)(?: that)? (.+?)(?:,? and |\.|$)",
            flat,
            re.IGNORECASE,
        )
        if told:
            say = told.group(1).strip()
        found.append(
            Injection(
                text=flat,
                addresses=tuple(emails(flat)),
                tools=tuple(name for name in tool_names if name and name in flat),
                say=say,
            )
        )
    return found


# -- what a requester should not get -------------------------------------------------------

_SENSITIVE = re.compile(
    r"\b(salar(?:y|ies)|pay ?roll|compensation|confidential|restricted|credentials?|passwords?|"
    r"secrets?|api keys?|tokens?|recovery codes?|one-time codes?|customer (?:list|data)|"
    r"personal data|pricing|bank details|break-glass)\b",
    re.IGNORECASE,
)
_CREDENTIALS = re.compile(
    r"\b(what is|what's|give me|tell me|send me|share|show me|reveal|read out|list)\b.{0,40}"
    r"\b(password|credentials?|api key|token|recovery codes?|one-time code|secret)s?\b",
    re.IGNORECASE,
)
_EXTERNAL_DOMAIN = re.compile(
    r"@(?:[a-z0-9-]+\.)*(?:evil|attacker|hacker|leak|pastebin|gmail|yahoo|hotmail|outlook|"
    r"proton|protonmail|gmx|mail)\.[a-z.]+$",
    re.IGNORECASE,
)


def harm_of(task: str) -> str | None:
    """Why a task is harmful (exfiltration, credentials), or None when it is not."""
    if _CREDENTIALS.search(task) and not re.search(r"\b(reset|forgot|change|rotate)\b", task, re.I):
        return "it asks for credentials or secrets"
    external = [a for a in emails(task) if _EXTERNAL_DOMAIN.search(a)]
    outside = re.search(
        r"\b(personal|private|external|outside)\b.{0,30}(address|e-?mail)", task, re.IGNORECASE
    )
    if _SENSITIVE.search(task) and (external or outside):
        return "it would send sensitive data outside the organisation"
    return None
