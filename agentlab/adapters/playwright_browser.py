"""The browser port on Playwright, driving the system's Chromium (Debian's ``chromium``).

Where the article's browser baseline (4.3) is enforced, below the model and the prompt:

* **allowlist** -- every request of every page goes through ``context.route("**/*")``; one
  whose host is off the allowlist is aborted before it leaves the browser and recorded. An
  allowed request is fetched here, one hop at a time (``route.fetch(max_redirects=0)``):
  Playwright never routes a redirect's next hop, so each ``Location`` is checked here too.
  WebSockets go through ``context.route_web_socket`` and are closed when off the list. A
  navigation that was aborted (a link, a redirect, a form posting elsewhere, a popup, a
  ``<meta refresh>``) ends the action as :class:`~agentlab.tools.ActionBlocked` (rule
  ``allowlist``), and the page goes back to where it was; a blocked image or script is
  listed in the result. One that happens between actions (a timer) is reported by the next.
* **no file attachments** -- no method sets files; a click or typing on a file input (or a
  label of one) is refused before it happens, and a file chooser opened any other way ends
  the action as a block (rule ``no_file_attachments``). Downloads are off.
* **credentials** -- a domain mapped to a vault credential gets an
  ``Authorization: Bearer <token>`` header, added here at the network layer from a
  short-lived token the vault issued, on the requests that the credential's own pages make
  (their frame is on the credential's domain) and on the navigation ``goto`` itself starts;
  never on a request another site starts (a forged form post), never on a redirect's hop to
  another credential's host. Page scripts, results and screenshots never see it.
* **brittleness** -- a selector that matches nothing within ``action_timeout_s`` is an
  :class:`~agentlab.tools.ActionFailed` (``selector_not_found``) with a screenshot and a
  DOM excerpt, and so is any other Playwright error during an action (``browser_error``):
  never an exception out of the executor.

The action cap is the executor's (``rateLimits.tools.browser.per_run_cap``), not this
module's. Each run gets its own browser context: no cookies or storage cross runs; the caller
closes it when the run ends (:meth:`PlaywrightBrowser.aclose_session`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Coroutine, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urljoin, urlsplit

from agentlab.core.clock import Clock, SystemClock
from agentlab.core.errors import ConfigError, MissingDependency
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
        Frame,
        Page,
        Playwright,
        Request,
        Route,
        WebSocketRoute,
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
MAX_REDIRECTS = 10
"""Hops a request may take before it fails, as browsers cap them (Chromium: 20)."""
_REDIRECTS = (301, 302, 303, 307, 308)

log = logging.getLogger(__name__)

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
        host_map: Host -> ``address:port`` that requests for it are sent to (plain http),
            the same map Chromium resolves with (see :func:`open_playwright_browser`).
        action_timeout_s: How long an action waits for its element; short, so a selector
            that a layout change broke fails fast.
        navigation_timeout_s: How long a page may take to load.
        clock: Tells when a token needs renewing.

    Raises:
        ConfigError: ``credentials`` without a ``vault``.
    """

    def __init__(
        self,
        browser: PwBrowser,
        *,
        allowed_domains: Iterable[str],
        vault: CredentialVault | None = None,
        credentials: Mapping[str, str] | None = None,
        start_pages: Mapping[str, str] | None = None,
        host_map: Mapping[str, str] | None = None,
        action_timeout_s: float = 2.0,
        navigation_timeout_s: float = 15.0,
        clock: Clock | None = None,
    ) -> None:
        self._browser = browser
        self.allowed_domains = tuple(allowed_domains)
        self._vault = vault
        self._credentials = dict(credentials or {})
        if self._credentials and vault is None:
            raise ConfigError(
                f"credentials {sorted(self._credentials)} were given without a vault to issue "
                "their tokens",
                hint="pass vault=CredentialVault({...}) holding each credential, or drop "
                "credentials",
            )
        self._host_map = {host.lower(): target for host, target in (host_map or {}).items()}
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
                await context.route_web_socket("**/*", session._route_web_socket)
                await session._open_page()
                context.on("page", session._on_page)
                self._sessions[run_id] = session
            return self._sessions[run_id]

    async def aclose_session(self, run_id: str) -> None:
        """Close the run's page and context; call it when the run ends.

        The executor opens a run's session on its first browser action and cannot tell when
        the run is over, so whoever runs the agent closes it (a run left open keeps its
        context, pages and their scripts until the browser closes).
        """
        async with self._lock:
            session = self._sessions.pop(run_id, None)
        if session is not None:
            await session.close()

    @property
    def open_runs(self) -> list[str]:
        """The runs whose session is open, sorted."""
        return sorted(self._sessions)

    async def aclose(self) -> None:
        """Close every run's context."""
        for run_id in list(self._sessions):
            await self.aclose_session(run_id)

    def _is_allowed(self, url: str, *, schemes: tuple[str, ...] = ("http", "https")) -> bool:
        parts = urlsplit(url)
        return parts.scheme in schemes and domain_allowed(
            parts.hostname or "", self.allowed_domains
        )

    def _credential_for(self, host: str) -> str | None:
        """The vault credential mapped to ``host`` (or a parent domain of it), if any."""
        if not host:
            return None
        return next(
            (name for domain, name in self._credentials.items() if domain_allowed(host, [domain])),
            None,
        )

    def _connect_url(self, url: str) -> tuple[str, dict[str, str]]:
        """Where to send a request for ``url`` (``host_map`` applied), and the Host header."""
        parts = urlsplit(url)
        target = self._host_map.get((parts.hostname or "").lower())
        if target is None or parts.scheme != "http":
            return url, {}
        return parts._replace(netloc=target).geturl(), {"host": parts.netloc}

    def _token_for(self, host: str) -> str | None:
        """A fresh token for the credential mapped to ``host``, if any (renewed near expiry).

        Raises:
            ConfigError: the vault holds no such credential.
        """
        credential = self._credential_for(host)
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
        self._reported = 0
        """How many of ``_blocked`` an action has reported; the rest happened since."""
        self._choosers = 0
        self._choosers_reported = 0
        self._lock = asyncio.Lock()
        self._last_good_url: str | None = None
        self._tool_url: str | None = None
        """The URL ``goto`` is opening: its navigation may carry a token whatever page is open."""
        self._tasks: set[asyncio.Task[Any]] = set()

    async def _open_page(self) -> None:
        page = await self._context.new_page()
        page.set_default_timeout(self._owner.action_timeout_s * 1000)
        page.set_default_navigation_timeout(self._owner.navigation_timeout_s * 1000)
        page.on("filechooser", self._refuse_chooser)
        page.on("dialog", lambda dialog: self._spawn(dialog.dismiss()))
        self._page = page

    @property
    def page(self) -> Page:
        """The run's page."""
        assert self._page is not None
        return self._page

    @property
    def unreported(self) -> int:
        """Navigations blocked and file choosers opened since the last action ended.

        The next action reports them (as a block) before it does anything.
        """
        navigations = sum(b.is_navigation for b in self._blocked[self._reported :])
        return navigations + self._choosers - self._choosers_reported

    async def close(self) -> None:
        """Close the page and its context."""
        await self._context.close()

    def _spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(_quietly(work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_page(self, page: Page) -> None:
        # A popup (target=_blank, window.open): the tools operate one page, so it is closed;
        # its first request was routed like any other, and blocked when off the list.
        if self._page is not None and page != self._page:
            self._spawn(page.close())

    # -- the network layer -----------------------------------------------------------------------

    def _block(self, url: str, is_navigation: bool, reason: str = "allowlist") -> None:
        self._blocked.append(BlockedRequest(url, is_navigation, reason))

    async def _route(self, route: Route) -> None:
        request = route.request
        frame = _frame_of(request)
        # A popup's first request has no frame yet: it would open a page, so a navigation.
        is_navigation = request.is_navigation_request() and (
            frame is None or frame.parent_frame is None
        )
        if not self._owner._is_allowed(request.url):
            self._block(request.url, is_navigation)
            await _abort(route, "blockedbyclient")
            return
        try:
            await self._forward(route, request, frame, is_navigation)
        except ConfigError as exc:
            # The vault could not issue the token: send nothing rather than stall the page.
            log.warning("browser request to %s aborted: %s", request.url, _first_line(exc))
            self._block(request.url, is_navigation, "credential_unavailable")
            await _abort(route, "failed")
        except PlaywrightError as exc:  # the server did not answer, or the page went away
            log.info("browser request to %s failed: %s", request.url, _first_line(exc))
            await _abort(route, "failed")

    async def _forward(
        self, route: Route, request: Request, frame: Frame | None, is_navigation: bool
    ) -> None:
        """Send an allowed request one hop at a time, checking every redirect's target."""
        url, method = request.url, request.method
        body = request.post_data_buffer
        headers = {k: v for k, v in request.headers.items() if k.lower() != "authorization"}
        credential = self._owner._credential_for(urlsplit(url).hostname or "")
        may_sign = credential is not None and self._started_by_credential(
            request, frame, credential, is_navigation
        )
        for _ in range(MAX_REDIRECTS + 1):
            host = urlsplit(url).hostname or ""
            # once a hop leaves the credential's hosts, the chain is no longer its own
            may_sign = may_sign and self._owner._credential_for(host) == credential
            sent = dict(headers)
            if may_sign:
                token = self._owner._token_for(host)
                if token is not None:
                    sent["authorization"] = f"Bearer {token}"
            target, host_header = self._owner._connect_url(url)
            response = await route.fetch(
                url=target,
                method=method,
                headers={**sent, **host_header},
                post_data=body,
                max_redirects=0,
                timeout=self._owner.navigation_timeout_s * 1000,
            )
            location = response.headers.get("location")
            if response.status not in _REDIRECTS or not location:
                await route.fulfill(response=response)
                return
            await response.dispose()
            following = urljoin(url, location)
            if not self._owner._is_allowed(following):
                self._block(following, is_navigation)
                await _abort(route, "blockedbyclient")
                return
            if response.status == 303 or (response.status in (301, 302) and method == "POST"):
                method, body = "GET", None
                headers = {
                    k: v
                    for k, v in headers.items()
                    if k.lower() not in ("content-type", "content-length")
                }
            url = following
        await _abort(route, "failed")  # too many redirects

    def _started_by_credential(
        self, request: Request, frame: Frame | None, credential: str, is_navigation: bool
    ) -> bool:
        """True for a request that the credential's own pages (or ``goto``) started.

        Another site's page must not send a signed request (a forged form post, a no-cors
        fetch): the token goes only with requests whose frame shows the credential's site,
        and with the top-level navigation the tool itself opened.
        """
        if (
            is_navigation
            and self._tool_url is not None
            and frame is not None
            and frame == self.page.main_frame
            and request.method == "GET"
            and _same_url(request.url, self._tool_url)
        ):
            self._tool_url = None
            return True
        if frame is None:
            return False
        return self._owner._credential_for(urlsplit(frame.url).hostname or "") == credential

    async def _route_web_socket(self, ws: WebSocketRoute) -> None:
        if self._owner._is_allowed(ws.url, schemes=("ws", "wss")):
            ws.connect_to_server()
            return
        self._block(ws.url, False)
        await _quietly(ws.close(code=1008, reason="off the browser's allowlist"))

    def _refuse_chooser(self, chooser: FileChooser) -> None:
        # Handling the event keeps the chooser from opening; no file is ever set on it.
        self._choosers += 1

    # -- actions ---------------------------------------------------------------------------------

    @asynccontextmanager
    async def _action(self) -> AsyncIterator[int]:
        """One action: report what happened since the last, and fail cleanly.

        A Playwright error becomes ActionFailed (ActionBlocked when a navigation was
        blocked). Yields the mark from which the action's blocked requests count.
        """
        async with self._lock:
            await self._report_late()
            mark = self._reported
            try:
                yield mark
            except BaseException as exc:
                # A refused or failed action reports everything so far; one that succeeded
                # has marked what its view showed, and the rest waits for the next action.
                self._reported = len(self._blocked)
                self._choosers_reported = self._choosers
                if not isinstance(exc, PlaywrightError):
                    raise
                if self._navigation_blocked(mark):
                    await self._recover()
                    raise await self._blocked_navigation(mark) from None
                raise ActionFailed(
                    f"the browser failed on {self.page.url}: {_first_line(exc)}. Open the "
                    "page again (browser_open) and read it before acting on it",
                    error_code="browser_error",
                    evidence=await self._evidence(with_dom=True),
                ) from None
            finally:
                self._tool_url = None

    async def _report_late(self) -> None:
        """Refuse to act while something the page did after the last action is unreported."""
        mark = self._reported
        choosers = self._choosers - self._choosers_reported
        self._choosers_reported = self._choosers
        if choosers:
            self._reported = len(self._blocked)
            raise ActionBlocked(
                "since the last action the page opened a file chooser by itself; it was not "
                "answered: file attachments are not allowed in browser runs",
                rule="no_file_attachments",
                evidence=await self._evidence(),
            )
        if self._navigation_blocked(mark):
            self._reported = len(self._blocked)
            await self._recover()
            raise await self._blocked_navigation(mark, late=True)

    async def goto(self, url: str) -> PageView:
        """Open ``url``; a URL or redirect off the allowlist is a block."""
        async with self._action() as mark:
            self._tool_url = url
            try:
                response = await self.page.goto(url, wait_until="load")
            except PlaywrightError as exc:
                if self._navigation_blocked(mark):
                    await self._recover()
                    raise await self._blocked_navigation(mark) from None
                raise ToolUnavailable(
                    f"could not open {url}: {_first_line(exc)}", error_code="navigation_failed"
                ) from None
            view = await self._settled_view(mark, status=response.status if response else None)
            self._last_good_url = view.url
            return view

    async def click(self, selector: str, *, is_dry_run: bool) -> PageView:
        """Click ``selector``; in a dry-run, describe what it would do."""
        async with self._action() as mark:
            element = await self._describe(selector)
            if element["is_file_input"]:
                raise await self._refuse_upload(selector)
            if is_dry_run:
                return await self._settled_view(mark, preview={"click": element})
            choosers = self._choosers
            try:
                await self.page.locator(selector).click()
                await self.page.wait_for_load_state("load")
            except PlaywrightError as exc:
                if not self._navigation_blocked(mark):
                    raise await self._failed(selector, "click_failed", exc) from None
            seen = self._choosers
            if seen > choosers:
                raise await self._refuse_upload(selector)
            self._choosers_reported = seen
            view = await self._settled_view(mark)
            self._last_good_url = view.url
            return view

    async def fill(self, selector: str, text: str, *, is_dry_run: bool) -> PageView:
        """Type ``text`` into ``selector``; in a dry-run, describe the field."""
        async with self._action() as mark:
            element = await self._describe(selector)
            if element["is_file_input"]:
                raise await self._refuse_upload(selector)
            if is_dry_run:
                return await self._settled_view(mark, preview={"fill": element, "chars": len(text)})
            try:
                await self.page.locator(selector).fill(text)
            except PlaywrightError as exc:
                raise await self._failed(selector, "fill_failed", exc) from None
            return await self._settled_view(mark)

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
            self._tool_url = self._last_good_url  # the tool's own navigation: signed as before
            try:
                await self.page.goto(self._last_good_url, wait_until="load")
            except PlaywrightError:
                continue
            if self.page.url == self._last_good_url:
                return

    async def _blocked_navigation(self, mark: int, *, late: bool = False) -> ActionFailed:
        [first, *_] = [b for b in self._blocked[mark:] if b.is_navigation]
        when = "since the last action, " if late else ""
        if first.reason != "allowlist":  # not a policy block: the set-up is wrong
            return ActionFailed(
                f"{when}the page could not open {first.url}: {first.reason.replace('_', ' ')}"
                f"; the page is {self.page.url}",
                error_code=first.reason,
                evidence=await self._evidence(),
            )
        allowed = ", ".join(self._owner.allowed_domains)
        return ActionBlocked(
            f"{when}the page tried to open {first.url}, which is off the browser's allowlist "
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

    async def _settled_view(
        self,
        mark: int,
        *,
        status: int | None = None,
        preview: Mapping[str, Any] | None = None,
    ) -> PageView:
        """The page once it holds still.

        A blocked navigation (a ``<meta refresh>`` that fired after load) is a block; one
        that went ahead (to an allowed page) is waited for.
        """
        for _ in range(3):
            if self._navigation_blocked(mark):
                await self._recover()
                raise await self._blocked_navigation(mark)
            end = len(self._blocked)  # what comes later is reported by the next action
            try:
                view = await self._view(mark, end, status=status, preview=preview)
            except PlaywrightError:  # "Execution context was destroyed": the page moved on
                await _quietly(self.page.wait_for_load_state("load"))
                status = None
                continue
            self._reported = end
            return view
        end = len(self._blocked)
        view = await self._view(mark, end, preview=preview)
        self._reported = end
        return view

    async def _view(
        self,
        mark: int,
        end: int,
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
            blocked=tuple(self._blocked[mark:end]),
            screenshot_png=await page.screenshot(type="png"),
            preview=dict(preview) if preview is not None else None,
        )


def _first_line(cause: object) -> str:
    return (str(cause).strip().splitlines() or ["no detail"])[0][:200]


def _frame_of(request: Request) -> Frame | None:
    """The request's frame; None for a popup's first request, sent before its frame exists."""
    try:
        return request.frame
    except PlaywrightError:
        return None


def _same_url(a: str, b: str) -> bool:
    """True when two URLs name the same page as Chromium writes it.

    ``http://h`` is ``http://h/``; fragments never reach the network.
    """

    def key(url: str) -> tuple[str, str, int | None, str, str]:
        parts = urlsplit(url)
        return (parts.scheme, parts.hostname or "", parts.port, parts.path or "/", parts.query)

    try:
        return key(a) == key(b)
    except ValueError:  # a port that is not a number
        return False


async def _abort(route: Route, error_code: str) -> None:
    await _quietly(route.abort(error_code))


async def _quietly(work: Coroutine[Any, Any, Any]) -> None:
    """Await ``work``, ignoring a Playwright error: the page or request is already gone."""
    try:
        await work
    except PlaywrightError as exc:
        log.debug("browser clean-up step failed: %s", _first_line(exc))


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
            the allowlisted names (Chromium's ``--host-resolver-rules`` for WebSockets, and
            the route's own fetches for plain http).
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
            host_map=host_map,
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
