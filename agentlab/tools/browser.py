"""Browser tools (Operator-style): open a page, click, type -- under the article's baseline.

The article's 4.3 asks four things of browser automation, and none of them is left to the
prompt:

1. **an allowlist of operable domains** -- ``browser_open`` names its URL as the call's
   target, so policy blocks an address off ``allowlists.browser_domains`` before the
   browser is touched; the backend blocks every other request off the list (a link, a
   redirect, an image) at the browser's network layer, and a blocked navigation comes back
   as :class:`~agentlab.tools.errors.ActionBlocked`, a policy block;
2. **at most 20 actions per run** -- the ``browser`` system's ``per_run_cap`` in the policy's
   ``rateLimits.tools``, counted by the executor;
3. **no file attachments** -- there is no upload tool, and the backend refuses any click or
   typing that would open a file chooser;
4. **credentials from a vault as short-lived tokens** -- the backend adds them to requests
   for the credential's domain; they never appear in arguments, results or pages.

Every action is a step with a screenshot artifact. A selector that no longer matches (the
page's layout changed) is an :class:`~agentlab.tools.errors.ActionFailed` carrying a
screenshot and a DOM excerpt, which the model reads and the executor keeps; never a crash.

The tools reach the browser through the :class:`Browser` port, the ``browser`` resource of
the executor; ``agentlab.adapters.playwright_browser`` is the backend.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from pydantic import Field, JsonValue

from agentlab.tools.context import Evidence, ToolContext, ToolOutput
from agentlab.tools.registry import tool
from agentlab.tools.spec import ToolArguments, WriteArguments

BROWSER_SYSTEM = "browser"
"""The system the page actions belong to: its caps (``per_run_cap``) bound them per run."""
TEXT_LIMIT = 4000
"""The most characters of a page's visible text a result carries."""

Selector = str


@dataclass(frozen=True)
class PageElement:
    """A link or form field on a page, with a selector that finds it."""

    selector: str
    kind: str
    """``link``, ``button``, ``text``, ``email``, ``textarea``, ``file``, ..."""
    label: str
    """The visible text, label or name that says what it is."""
    url: str | None = None
    """Where a link goes."""


@dataclass(frozen=True)
class BlockedRequest:
    """A request the browser did not send, because its host is off the allowlist."""

    url: str
    is_navigation: bool
    """True when it would have replaced the page (a link, a redirect, a form, a popup)."""
    reason: str = "allowlist"
    """Why: ``allowlist`` (its host is off the list), or ``credential_unavailable`` (the
    vault could not issue the token the request needed, so it was not sent at all)."""


@dataclass(frozen=True)
class PageView:
    """What a page shows after an action: for the model, and the screenshot as evidence."""

    url: str
    title: str
    text: str
    """The page's visible text, clipped to :data:`TEXT_LIMIT` characters."""
    elements: tuple[PageElement, ...] = ()
    blocked: tuple[BlockedRequest, ...] = ()
    """Requests refused at the network layer during the action."""
    screenshot_png: bytes = b""
    preview: Mapping[str, JsonValue] | None = None
    """For a dry-run: the element the action would touch, and what it would do."""

    def as_result(self) -> dict[str, JsonValue]:
        """The view as the model reads it (the screenshot is evidence, not text)."""
        result: dict[str, JsonValue] = {
            "url": self.url,
            "title": self.title,
            "text": self.text[:TEXT_LIMIT],
            "links": [
                {"label": e.label, "url": e.url, "selector": e.selector}
                for e in self.elements
                if e.kind == "link"
            ],
            "fields": [
                {"label": e.label, "kind": e.kind, "selector": e.selector}
                for e in self.elements
                if e.kind != "link"
            ],
        }
        if self.blocked:
            result["blocked_requests"] = [
                {"url": b.url, "is_navigation": b.is_navigation, "reason": b.reason}
                for b in self.blocked
            ]
        if self.preview is not None:
            result["would"] = dict(self.preview)
        return result

    def evidence(self) -> tuple[Evidence, ...]:
        """The screenshot, as the executor keeps it: base64 PNG."""
        if not self.screenshot_png:
            return ()
        return (screenshot_evidence(self.screenshot_png),)


def screenshot_evidence(png: bytes) -> Evidence:
    """A PNG screenshot as an artifact's evidence (base64 text, ``image/png``)."""
    return Evidence("screenshot", base64.b64encode(png).decode("ascii"), "image/png")


class BrowserSession(Protocol):
    """One run's page. Every method is one action; backends refuse what the baseline forbids.

    Failures come as :class:`~agentlab.tools.errors.ActionFailed` (a selector that matches
    nothing, a timeout) or :class:`~agentlab.tools.errors.ActionBlocked` (a navigation off
    the allowlist, a file chooser), each with a screenshot.
    """

    async def goto(self, url: str) -> PageView:
        """Open ``url`` in the run's page."""
        ...

    async def click(self, selector: Selector, *, is_dry_run: bool) -> PageView:
        """Click the element; in a dry-run, describe what the click would do instead."""
        ...

    async def fill(self, selector: Selector, text: str, *, is_dry_run: bool) -> PageView:
        """Type ``text`` into a field; in a dry-run, describe the field instead."""
        ...


@runtime_checkable
class Browser(Protocol):
    """The ``browser`` resource: a page per run, and the pages a run may start from."""

    start_pages: Mapping[str, str]
    """Start pages by name (``Supplier portal``) -> URL."""

    async def session(self, run_id: str) -> BrowserSession:
        """The page of run ``run_id`` (opened on first use, kept until closed)."""
        ...

    async def aclose_session(self, run_id: str) -> None:
        """Close run ``run_id``'s page and context, if open.

        The executor opens a session on a run's first browser action but cannot tell when
        the run ends: whoever runs the agent calls this then (the browser closes the rest
        when it closes).
        """
        ...


def _browser(ctx: ToolContext) -> Browser:
    return ctx.resource("browser", Browser)


async def _session(ctx: ToolContext) -> BrowserSession:
    return await _browser(ctx).session(ctx.run_id or "no-run")


def _output(view: PageView) -> ToolOutput:
    return ToolOutput(view.as_result(), evidence=view.evidence())


def _write_output(view: PageView, action: str, selector: str) -> ToolOutput:
    diff: dict[str, JsonValue] = {"browser.page": {"action": action, "selector": selector}}
    if view.preview is not None:
        diff["browser.page"] = {**diff["browser.page"], **dict(view.preview)}  # type: ignore[dict-item]
    return ToolOutput(view.as_result(), diff=diff, evidence=view.evidence())


class BrowserStartPages(ToolArguments):
    """List the web pages the browser may start from in this use case: a name and URL each."""


@tool(
    BrowserStartPages,
    side_effect="read",
    scope="browser:use",
    system="browser_start_pages",
    resources=("browser",),
)
async def browser_start_pages(args: BrowserStartPages, ctx: ToolContext) -> ToolOutput:
    """The configured start pages; touches no page."""
    pages = [{"name": name, "url": url} for name, url in _browser(ctx).start_pages.items()]
    return ToolOutput({"pages": pages})  # type: ignore[dict-item]


class BrowserOpen(ToolArguments):
    """Open a web page in the browser and read it: its text, links and form fields."""

    # No backslash anywhere and no "user@" before the host: Python's urlsplit (which policy
    # checks) and Chromium (which navigates) read "http://evil.test\\@portal.example.co.jp/"
    # as different hosts, so such a URL could pass policy for one host and open another.
    url: str = Field(pattern=r"^https?://[^\s\\/?#@]+(?:[/?#][^\s\\]*)?$", max_length=2048)
    """The page's address (http or https, no user name or backslash) on an allowed domain;
    look it up with browser_start_pages, or take it from a link of the page open now."""


@tool(
    BrowserOpen,
    side_effect="read",
    scope="browser:use",
    system=BROWSER_SYSTEM,
    targets=lambda args: (args.url,),
    resources=("browser",),
)
async def browser_open(args: BrowserOpen, ctx: ToolContext) -> ToolOutput:
    """Navigate the run's page to a URL."""
    return _output(await (await _session(ctx)).goto(args.url))


class BrowserClick(WriteArguments):
    """Click a link or button on the page open in the browser (dry-run supported)."""

    selector: str = Field(min_length=1, max_length=200, pattern=r"^[^\n\r]+$")
    """A CSS selector of the element, as the page's links and fields list it (e.g.
    #save-contact)."""


@tool(
    BrowserClick,
    side_effect="write",
    scope="browser:use",
    system=BROWSER_SYSTEM,
    resources=("browser",),
)
async def browser_click(args: BrowserClick, ctx: ToolContext) -> ToolOutput:
    """Click (or, in a dry-run, point at) one element."""
    session = await _session(ctx)
    view = await session.click(args.selector, is_dry_run=ctx.is_dry_run)
    return _write_output(view, "click", args.selector)


class BrowserFill(WriteArguments):
    """Type text into a form field on the page open in the browser (dry-run supported)."""

    selector: str = Field(min_length=1, max_length=200, pattern=r"^[^\n\r]+$")
    """A CSS selector of the field, as the page's fields list it (e.g. #contact-email)."""
    text: str = Field(max_length=2000)
    """What to type; it replaces the field's content."""


@tool(
    BrowserFill,
    side_effect="write",
    scope="browser:use",
    system=BROWSER_SYSTEM,
    masked_fields=("text",),
    resources=("browser",),
)
async def browser_fill(args: BrowserFill, ctx: ToolContext) -> ToolOutput:
    """Fill (or, in a dry-run, point at) one field."""
    session = await _session(ctx)
    view = await session.fill(args.selector, args.text, is_dry_run=ctx.is_dry_run)
    return _write_output(view, "fill", args.selector)


BROWSER_TOOLS = (browser_start_pages, browser_open, browser_click, browser_fill)
"""The browser tools; they need the executor's ``browser`` resource."""
