"""The browser port on Playwright, driving the system's Chromium (Debian's ``chromium``).

Where the article's browser baseline (4.3) is enforced, below the model and the prompt:

* **allowlist** -- every request of every page goes through ``context.route("**/*")``; one
  whose host is off the allowlist is aborted before it leaves the browser and recorded. A
  navigation that was aborted (a link, a redirect, a form posting elsewhere) ends the action
  as :class:`~agentlab.tools.ActionBlocked` (rule ``allowlist``), and the page goes back to
  where it was; a blocked image or script is listed in the result.
* **no file attachments** -- no method sets files; a click or typing on a file input (or a
  label of one) is refused before it happens, and a file chooser opened any other way ends
  the action as a block (rule ``no_file_attachments``). Downloads are off.
* **credentials** -- a domain mapped to a vault credential gets an
  ``Authorization: Bearer <token>`` header on its requests, added here at the network layer
  from a short-lived token the vault issued; page scripts, results and screenshots never
  see it.
* **brittleness** -- a selector that matches nothing within ``action_timeout_s`` is an
  :class:`~agentlab.tools.ActionFailed` (``selector_not_found``) with a screenshot and a
  DOM excerpt, never an exception out of the executor.

The action cap is the executor's (``rateLimits.tools.browser.per_run_cap``), not this
module's. Each run gets its own browser context: no cookies or storage cross runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

from agentlab.core.clock import Clock, SystemClock
from agentlab.core.errors import MissingDependency
from agentlab.policy import domain_allowed
from agentlab.security import CredentialVault, ShortLivedToken
from agentlab.tools import (
    ActionBlocked,
    ActionFailed,
    BlockedRequest,
    Evidence,
    PageElement,
    PageView,
    ToolUnavailable,
    screenshot_evidence,
)

try:
    from playwright.async_api import (
        Browser as PwBrowser,
    )
    from playwright.async_api import (
        BrowserContext,
        FileChooser,
        Page,
        Playwright,
        Route,
        async_playwright,
    )
    from playwright.async_api import (
        Error as PlaywrightError,
    )
    from playwright.async_api import (
        TimeoutError as PlaywrightTimeout,
    )
except ImportError as exc:  # pragma: no cover - the browser extra is part of the dev env
    raise MissingDependency(
        "the browser tool needs playwright", hint="pip install 'agentlab[browser]'"
    ) from exc

CHROMIUM = "/usr/bin/chromium"
"""Debian's Chromium; ``playwright install`` is not needed (nor possible offline)."""
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
"""Quiet flags: without them Chromium phones home on start, and floods refused connections
on a machine without a network."""
DOM_EXCERPT_CHARS = 4000

# Every link and form control on the page, each with a selector that finds it alone.
_ELEMENTS_JS = """
() => {
  const unique = (sel) => { try { return document.querySelectorAll(sel).length === 1; }
                            catch (e) { return false; } };
  const q = (v) => JSON.stringify(v);
  const selectorOf = (el) => {
    if (el.id && unique('#' + CSS.escape(el.id))) return '#' + CSS.escape(el.id);
    for (const attr of ['data-testid', 'data-field', 'data-action', 'name']) {
      const v = el.getAttribute(attr);
      const sel = `${el.tagName.toLowerCase()}[${attr}=${q(v)}]`;
      if (v && unique(sel)) return sel;
    }
    const href = el.getAttribute('href');
    if (href && unique(`a[href=${q(href)}]`)) return `a[href=${q(href)}]`;
    const path = [];
    for (let node = el; node && node.nodeType === 1 && node !== document.body;
         node = node.parentElement) {
      const same = [...node.parentElement.children].filter((c) => c.tagName === node.tagName);
      path.unshift(node.tagName.toLowerCase() +
        (same.length > 1 ? `:nth-of-type(${same.indexOf(node) + 1})` : ''));
    }
    return 'body > ' + path.join(' > ');
  };
  const labelOf = (el) => {
    const text = (el.innerText || '').trim();
    if (text) return text.slice(0, 80);
    if (el.labels && el.labels.length) return el.labels[0].innerText.trim().slice(0, 80);
    return (el.getAttribute('aria-label') || el.getAttribute('name') ||
            el.getAttribute('placeholder') || '').slice(0, 80);
  };
  const kindOf = (el) => {
    const tag = el.tagName.toLowerCase();
    if (tag === 'a') return 'link';
    if (tag === 'input') return (el.getAttribute('type') || 'text').toLowerCase();
    return tag;
  };
  return [...document.querySelectorAll('a[href], input, textarea, select, button')]
    .filter((el) => kindOf(el) !== 'hidden')
    .slice(0, 60)
    .map((el) => ({selector: selectorOf(el), kind: kindOf(el), label: labelOf(el),
                   url: el.tagName === 'A' ? el.href : null}));
}
"""

# What an element is, and whether touching it would ask for a file.
_DESCRIBE_JS = """
(el) => {
  const control = el.tagName === 'LABEL' ? el.control : el;
  const form = el.form || (el.closest && el.closest('form'));
  return {
    tag: el.tagName.toLowerCase(),
    type: (el.getAttribute('type') || '').toLowerCase(),
    text: ((el.innerText || el.value || '') + '').trim().slice(0, 80),
    href: el.tagName === 'A' ? el.href : null,
    form_action: form ? form.action : null,
    form_method: form ? (form.getAttribute('method') || 'get').toLowerCase() : null,
    is_file_input: !!(control && control.tagName === 'INPUT' &&
                      (control.type || '').toLowerCase() === 'file'),
  };
}
"""


class PlaywrightBrowser:
    """The :class:`~agentlab.tools.Browser` port on Playwright.

    Open one with :func:`open_playwright_browser`, which launches and closes Chromium.

    Args:
        browser: A launched Playwright browser.
        allowed_domains: The domains pages may reach (and their subdomains); everything
            else is blocked at the network layer.
        vault: Issues the tokens of ``credentials``.
        credentials: Domain -> vault credential: requests to the domain (or a subdomain)
            carry a token of that credential.
        start_pages: Name -> URL: where a run may start (``browser_start_pages``).
        action_timeout_s: How long an action waits for its element; short, so a selector
            that a layout change broke fails fast.
        navigation_timeout_s: How long a page may take to load.
        clock: Tells when a token needs renewing.
    """

    def __init__(
        self,
        browser: PwBrowser,
        *,
        allowed_domains: Iterable[str],
        vault: CredentialVault | None = None,
        credentials: Mapping[str, str] | None = None,
        start_pages: Mapping[str, str] | None = None,
        action_timeout_s: float = 2.0,
        navigation_timeout_s: float = 15.0,
        clock: Clock | None = None,
    ) -> None:
        self._browser = browser
        self.allowed_domains = tuple(allowed_domains)
        self._vault = vault
        self._credentials = dict(credentials or {})
        if self._credentials and vault is None:
            raise ValueError("credentials need a vault to issue their tokens")
        self.start_pages: Mapping[str, str] = dict(start_pages or {})
        self.action_timeout_s = action_timeout_s
        self.navigation_timeout_s = navigation_timeout_s
        self._clock = clock or (vault.clock if vault is not None else SystemClock())
        self._sessions: dict[str, PlaywrightSession] = {}
        self._tokens: dict[str, ShortLivedToken] = {}
        self._lock = asyncio.Lock()

    async def session(self, run_id: str) -> PlaywrightSession:
        """The page of run ``run_id``, in a context of its own."""
        async with self._lock:
            if run_id not in self._sessions:
                context = await self._browser.new_context(
                    accept_downloads=False,
                    service_workers="block",
                    viewport={"width": 1024, "height": 768},
                )
                session = PlaywrightSession(self, context)
                await context.route("**/*", session._route)
                await session._open_page()
                self._sessions[run_id] = session
            return self._sessions[run_id]

    async def close_session(self, run_id: str) -> None:
        """Close the run's page and context (a finished run's)."""
        session = self._sessions.pop(run_id, None)
        if session is not None:
            await session.close()

    async def aclose(self) -> None:
        """Close every run's context."""
        for run_id in list(self._sessions):
            await self.close_session(run_id)

    def _token_for(self, host: str) -> str | None:
        """A fresh token for the credential mapped to ``host``, if any (renewed near expiry)."""
        credential = next(
            (name for domain, name in self._credentials.items() if domain_allowed(host, [domain])),
            None,
        )
        if credential is None or self._vault is None:
            return None
        token = self._tokens.get(credential)
        if token is None or not token.is_fresh(self._clock.now()):
            token = self._vault.issue(credential)
            self._tokens[credential] = token
        return token.value


class PlaywrightSession:
    """One run's page: the :class:`~agentlab.tools.BrowserSession` on Playwright."""

    def __init__(self, owner: PlaywrightBrowser, context: BrowserContext) -> None:
        self._owner = owner
        self._context = context
        self._page: Page | None = None
        self._blocked: list[BlockedRequest] = []
        self._choosers = 0
        self._lock = asyncio.Lock()
        self._last_good_url: str | None = None

    async def _open_page(self) -> None:
        page = await self._context.new_page()
        page.set_default_timeout(self._owner.action_timeout_s * 1000)
        page.set_default_navigation_timeout(self._owner.navigation_timeout_s * 1000)
        page.on("filechooser", self._refuse_chooser)
        page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.dismiss()))
        self._page = page

    @property
    def page(self) -> Page:
        """The run's page."""
        assert self._page is not None
        return self._page

    async def close(self) -> None:
        """Close the page and its context."""
        await self._context.close()

    # -- the network layer -----------------------------------------------------------------------

    async def _route(self, route: Route) -> None:
        request = route.request
        parts = urlsplit(request.url)
        host = parts.hostname or ""
        if parts.scheme not in ("http", "https") or not domain_allowed(
            host, self._owner.allowed_domains
        ):
            is_navigation = request.is_navigation_request() and request.frame.parent_frame is None
            self._blocked.append(BlockedRequest(request.url, is_navigation))
            await route.abort("blockedbyclient")
            return
        token = self._owner._token_for(host)
        if token is None:
            await route.continue_()
            return
        await route.continue_(headers={**request.headers, "authorization": f"Bearer {token}"})

    def _refuse_chooser(self, chooser: FileChooser) -> None:
        # Handling the event keeps the chooser from opening; no file is ever set on it.
        self._choosers += 1

    # -- actions ---------------------------------------------------------------------------------

    async def goto(self, url: str) -> PageView:
        """Open ``url``; a URL or redirect off the allowlist is a block."""
        async with self._lock:
            mark = len(self._blocked)
            try:
                response = await self.page.goto(url, wait_until="load")
            except PlaywrightError as exc:
                if self._navigation_blocked(mark):
                    await self._recover()
                    raise await self._blocked_navigation(mark) from None
                raise ToolUnavailable(
                    f"could not open {url}: {_first_line(exc)}", error_code="navigation_failed"
                ) from None
            self._last_good_url = self.page.url
            return await self._view(mark, status=response.status if response else None)

    async def click(self, selector: str, *, is_dry_run: bool) -> PageView:
        """Click ``selector``; in a dry-run, describe what it would do."""
        async with self._lock:
            mark = len(self._blocked)
            element = await self._describe(selector)
            if element["is_file_input"]:
                raise await self._refuse_upload(selector)
            if is_dry_run:
                return await self._view(mark, preview={"click": element})
            choosers = self._choosers
            try:
                await self.page.locator(selector).click()
                await self.page.wait_for_load_state("load")
            except PlaywrightError as exc:
                if not self._navigation_blocked(mark):
                    raise await self._failed(selector, "click_failed", exc) from None
            if self._choosers > choosers:
                raise await self._refuse_upload(selector)
            if self._navigation_blocked(mark):
                await self._recover()
                raise await self._blocked_navigation(mark)
            self._last_good_url = self.page.url
            return await self._view(mark)

    async def fill(self, selector: str, text: str, *, is_dry_run: bool) -> PageView:
        """Type ``text`` into ``selector``; in a dry-run, describe the field."""
        async with self._lock:
            mark = len(self._blocked)
            element = await self._describe(selector)
            if element["is_file_input"]:
                raise await self._refuse_upload(selector)
            if is_dry_run:
                return await self._view(mark, preview={"fill": element, "chars": len(text)})
            try:
                await self.page.locator(selector).fill(text)
            except PlaywrightError as exc:
                raise await self._failed(selector, "fill_failed", exc) from None
            return await self._view(mark)

    # -- helpers ---------------------------------------------------------------------------------

    async def _describe(self, selector: str) -> dict[str, Any]:
        """What ``selector`` finds; ActionFailed when it finds nothing, or several things."""
        locator = self.page.locator(selector)
        try:
            await locator.first.wait_for(state="attached")
            count = await locator.count()
        except PlaywrightTimeout as exc:
            raise await self._failed(selector, "selector_not_found", exc) from None
        except PlaywrightError as exc:  # a selector that is not valid CSS
            raise await self._failed(selector, "bad_selector", exc) from None
        if count > 1:
            raise await self._failed(
                selector, "selector_ambiguous", f"it matches {count} elements; use one from fields"
            )
        described: dict[str, Any] = await locator.evaluate(_DESCRIBE_JS)
        return described

    def _navigation_blocked(self, mark: int) -> bool:
        return any(b.is_navigation for b in self._blocked[mark:])

    async def _recover(self) -> None:
        """Back to the last page that loaded, after a navigation was aborted.

        Chromium shows its error page for the aborted navigation a moment later, which
        interrupts a navigation started before it; so try again, a few times at most.
        """
        if not self._last_good_url:
            return
        for _ in range(3):
            try:
                await self.page.goto(self._last_good_url, wait_until="load")
            except PlaywrightError:
                continue
            if self.page.url == self._last_good_url:
                return

    async def _blocked_navigation(self, mark: int) -> ActionBlocked:
        urls = [b.url for b in self._blocked[mark:] if b.is_navigation]
        allowed = ", ".join(self._owner.allowed_domains)
        return ActionBlocked(
            f"the page tried to open {urls[0]}, which is off the browser's allowlist "
            f"(allowed: {allowed}); it was not followed, and the page is {self.page.url}",
            rule="allowlist",
            evidence=await self._evidence(),
        )

    async def _refuse_upload(self, selector: str) -> ActionBlocked:
        return ActionBlocked(
            f"{selector} asks for a file: file attachments are not allowed in browser runs "
            "(the article's baseline); attach files through a reviewed channel instead",
            rule="no_file_attachments",
            evidence=await self._evidence(),
        )

    async def _failed(self, selector: str, code: str, cause: object) -> ActionFailed:
        reason = _first_line(cause)
        return ActionFailed(
            f"{selector} on {self.page.url}: {code.replace('_', ' ')} ({reason}). The page may "
            "have changed; read its fields again (browser_open) and use a selector they list",
            error_code=code,
            evidence=await self._evidence(with_dom=True),
        )

    async def _evidence(self, *, with_dom: bool = False) -> tuple[Evidence, ...]:
        found: list[Evidence] = []
        try:
            found.append(screenshot_evidence(await self.page.screenshot(type="png")))
            if with_dom:
                dom = (await self.page.content())[:DOM_EXCERPT_CHARS]
                found.append(Evidence("dom_excerpt", dom, "text/html"))
        except PlaywrightError as exc:  # a page between two documents cannot be captured
            found.append(Evidence("capture_failed", _first_line(exc), "text/plain"))
        return tuple(found)

    async def _view(
        self,
        mark: int,
        *,
        status: int | None = None,
        preview: Mapping[str, Any] | None = None,
    ) -> PageView:
        page = self.page
        elements = await page.evaluate(_ELEMENTS_JS)
        text = await page.evaluate("() => document.body ? document.body.innerText : ''")
        if status is not None and status >= 400:
            text = f"[HTTP {status}]\n{text}"
        return PageView(
            url=page.url,
            title=await page.title(),
            text=str(text),
            elements=tuple(PageElement(**item) for item in elements),
            blocked=tuple(self._blocked[mark:]),
            screenshot_png=await page.screenshot(type="png"),
            preview=dict(preview) if preview is not None else None,
        )


def _first_line(cause: object) -> str:
    return (str(cause).strip().splitlines() or ["no detail"])[0][:200]


@asynccontextmanager
async def open_playwright_browser(
    *,
    allowed_domains: Iterable[str],
    host_map: Mapping[str, str] | None = None,
    vault: CredentialVault | None = None,
    credentials: Mapping[str, str] | None = None,
    start_pages: Mapping[str, str] | None = None,
    executable_path: str = CHROMIUM,
    action_timeout_s: float = 2.0,
    navigation_timeout_s: float = 15.0,
    clock: Clock | None = None,
) -> AsyncIterator[PlaywrightBrowser]:
    """Launch headless Chromium and yield the browser port; everything closes at the end.

    Args:
        allowed_domains: The policy's ``allowlists.browser_domains``.
        host_map: Host -> ``address:port`` to resolve it to, e.g.
            ``{"portal.example.co.jp": "127.0.0.1:8765"}``, so the sandbox world answers for
            the allowlisted names (Chromium's ``--host-resolver-rules``).
        vault: Issues the tokens of ``credentials``.
        credentials: Domain -> vault credential (``{"portal.example.co.jp":
            "supplier_portal"}``).
        start_pages: Name -> URL, offered by ``browser_start_pages``.
        executable_path: The Chromium binary.
        action_timeout_s: How long an action waits for its element.
        navigation_timeout_s: How long a page may take to load.
        clock: Tells when tokens need renewing (the vault's clock by default).
    """
    args = list(CHROMIUM_ARGS)
    if host_map:
        rules = ", ".join(f"MAP {host} {target}" for host, target in host_map.items())
        args.append(f"--host-resolver-rules={rules}")
    playwright: Playwright = await async_playwright().start()
    try:
        launched = await playwright.chromium.launch(
            executable_path=executable_path, headless=True, args=args
        )
        browser = PlaywrightBrowser(
            launched,
            allowed_domains=allowed_domains,
            vault=vault,
            credentials=credentials,
            start_pages=start_pages,
            action_timeout_s=action_timeout_s,
            navigation_timeout_s=navigation_timeout_s,
            clock=clock,
        )
        try:
            yield browser
        finally:
            await browser.aclose()
            await launched.close()
    finally:
        await playwright.stop()
