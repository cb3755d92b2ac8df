"""Caps and the LLM budget shared by every worker of a cluster, kept in Redis.

:class:`RedisToolCaps` and :class:`RedisLLMBudget` behave as
:class:`~agentlab.runtime.ToolCaps` and :class:`~agentlab.llm.LLMBudget` do, but their counters
live in one Redis server, so executors and model clients in many processes on many machines
share one ERP concurrency of 5, one daily e-mail cap and one 300 requests per minute.

Every check-and-change is one Lua script, so Redis runs it atomically: no two workers can both
take the last slot or the last commit of the day. Times that matter to more than one worker
(lease expiries, bucket refills, a 429 pause) come from Redis ``TIME``, so the workers' clocks
need not agree. The day of a daily cap comes from the injected clock, as in ToolCaps.

The key layout, the scripts and the failure modes are described in ``docs/redis-limits.md``.
A single Redis server (or a primary with replicas) is assumed, not Redis Cluster: the slot
script touches two keys that Redis Cluster could put on different nodes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, NoReturn
from urllib.parse import urlsplit

from agentlab.adapters._urls import redact_url
from agentlab.core.clock import Clock
from agentlab.core.errors import BackendError, ConfigError, MissingDependency
from agentlab.llm.budget import check_limits
from agentlab.policy import Policy, RateLimits
from agentlab.runtime.caps import ToolCaps
from agentlab.store.audit import AuditRecord

try:
    import redis
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingDependency(
        "the Redis-backed caps and budget need the redis client",
        hint="pip install 'agentlab[scale]'",
    ) from exc

logger = logging.getLogger(__name__)

DEFAULT_NAMESPACE = "agentlab"
_DAILY_TTL_S = 2 * 24 * 3600  # a day's counter outlives its day, whatever the time zone
_RUN_TTL_S = 7 * 24 * 3600  # a run waiting on approvals may resume days later
_POLL_FIRST_S = 0.002
_POLL_MAX_S = 0.05
_SECONDS_PER_MINUTE = 60.0
_TOLERANCE_S = 1e-6  # as in LLMBudget: rounding after an exact sleep must not cause a second wait

# -- Lua scripts -------------------------------------------------------------------------------
# Redis runs each script atomically. Since Redis 5 scripts replicate their effects, so reading
# TIME before a write is allowed.

_NOW_MS_LUA = """
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
-- The lease set disappears with its last lease, even if workers disagree on the lease ttl.
local function expire_with_last_lease()
  local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  redis.call('PEXPIREAT', KEYS[1], last[2])
end
"""

# KEYS: the system's lease set, the peak hash. ARGV: lease id, limit, ttl ms, system.
_ACQUIRE_SLOT = (
    _NOW_MS_LUA
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms)
local held = redis.call('ZCARD', KEYS[1])
if held >= tonumber(ARGV[2]) then
  return 0
end
local ttl_ms = tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], now_ms + ttl_ms, ARGV[1])
expire_with_last_lease()
held = held + 1
local peak = tonumber(redis.call('HGET', KEYS[2], ARGV[4]) or '0')
if held > peak then
  redis.call('HSET', KEYS[2], ARGV[4], held)
end
return 1
"""
)

# KEYS: the lease set. ARGV: lease id, ttl ms. A lease that has expired (pruned or not yet)
# stays expired: its slot may have been counted free already.
_RENEW_SLOT = (
    _NOW_MS_LUA
    + """
local expires = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not expires or tonumber(expires) <= now_ms then
  return 0
end
redis.call('ZADD', KEYS[1], 'XX', now_ms + tonumber(ARGV[2]), ARGV[1])
expire_with_last_lease()
return 1
"""
)

# KEYS: the lease set. Leases whose expiry has passed do not count.
_COUNT_SLOTS = (
    _NOW_MS_LUA
    + """
return redis.call('ZCOUNT', KEYS[1], '(' .. now_ms, '+inf')
"""
)

# KEYS: the day's counter. ARGV: cap, ttl s.
_TAKE_COMMIT = """
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n >= tonumber(ARGV[1]) then
  return 0
end
redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
"""

# KEYS: the day's counter.
_GIVE_BACK_COMMIT = """
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n > 0 then
  redis.call('DECR', KEYS[1])
end
return 0
"""

# KEYS: the (run, system) step set. ARGV: step id, cap, ttl s.
_TAKE_RUN_CALL = """
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then
  return 1
end
if redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
"""

# The budget's buckets: ARGV[1] is the injected time in seconds, or '' for Redis TIME; ARGV[2]
# and ARGV[3] the requests and tokens per minute. Levels refill continuously up to a minute's
# worth and may go below zero (settle charges tokens beyond the estimate).
_BUCKETS_LUA = """
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
else
  now = tonumber(ARGV[1])
end
local rpm = tonumber(ARGV[2])
local tpm = tonumber(ARGV[3])
local h = redis.call('HMGET', KEYS[1], 'requests', 'tokens', 'updated', 'paused_until')
local req = tonumber(h[1]) or rpm
local tok = tonumber(h[2]) or tpm
local updated = tonumber(h[3]) or now
local paused_until = tonumber(h[4]) or 0
local elapsed = math.max(0, now - updated)
req = math.min(rpm, req + elapsed * rpm / 60)
tok = math.min(tpm, tok + elapsed * tpm / 60)
updated = math.max(updated, now)
local function save()
  redis.call('HSET', KEYS[1], 'requests', string.format('%.17g', req),
    'tokens', string.format('%.17g', tok), 'updated', string.format('%.17g', updated))
  -- kept until both buckets are full again and any pause is over; then a fresh hash is the same
  local full_s = math.max((rpm - req) / (rpm / 60), (tpm - tok) / (tpm / 60), paused_until - now)
  redis.call('EXPIRE', KEYS[1], math.ceil(math.max(full_s, 0)) + 60)
end
"""

# ARGV[4]: the estimated tokens. Returns {1} when granted, else {0, wait s, what it waits for}.
_TAKE_BUDGET = (
    _BUCKETS_LUA
    + """
local need = tonumber(ARGV[4])
local wait, what = paused_until - now, 'pause'
local wait_req = math.max(0, 1 - req) / (rpm / 60)
if wait_req > wait then wait, what = wait_req, 'requests' end
local wait_tok = math.max(0, need - tok) / (tpm / 60)
if wait_tok > wait then wait, what = wait_tok, 'tokens' end
if wait > tonumber(ARGV[5]) then
  local reason = redis.call('HGET', KEYS[1], 'pause_reason') or ''
  return {0, tostring(wait), what, reason}
end
req = req - 1
tok = tok - need
redis.call('HINCRBY', KEYS[1], 'granted', 1)
save()
return {1}
"""
)

# ARGV[4]: tokens to give back (estimate minus actual; negative charges more).
_SETTLE_BUDGET = (
    _BUCKETS_LUA
    + """
tok = math.min(tpm, tok + tonumber(ARGV[4]))
save()
return 0
"""
)

# ARGV[4]: the pause in seconds, ARGV[5]: its reason. A shorter pause never cuts a longer one.
_PAUSE_BUDGET = (
    _BUCKETS_LUA
    + """
local until_s = now + tonumber(ARGV[4])
if until_s > paused_until then
  paused_until = until_s
  redis.call('HSET', KEYS[1], 'paused_until', string.format('%.17g', until_s),
    'pause_reason', ARGV[5])
end
save()
return 0
"""
)


def redact_redis_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, fit for messages and logs."""
    return redact_url(url)


def _describe_client(client: redis.Redis) -> str:
    """Where a client connects, for messages: host, port and db, never the password."""
    kwargs = client.connection_pool.connection_kwargs
    if "path" in kwargs:
        return f"unix://{kwargs['path']}?db={kwargs.get('db', 0)}"
    return f"redis://{kwargs.get('host', '?')}:{kwargs.get('port', '?')}/{kwargs.get('db', 0)}"


def _backend_error(client: redis.Redis, what: str, exc: redis.RedisError) -> BackendError:
    return BackendError(
        f"Redis at {_describe_client(client)} failed while {what}: {type(exc).__name__}: {exc}",
        hint="check that redis-server is running and reachable; shared caps need it",
    )


def _refuse_pickling(kind: str) -> NoReturn:
    raise TypeError(
        f"a {kind} holds a Redis connection and cannot be pickled; build one in each worker "
        "process with agentlab.adapters.redis_limits.open_shared_limits(redis_url, policy)"
    )


class RedisToolCaps(ToolCaps):
    """:class:`~agentlab.runtime.ToolCaps` whose counters live in Redis, shared by all workers.

    Concurrency slots are leases: a sorted set per system holds one member per call in
    flight, scored by its expiry (Redis time). A call renews its lease in the background
    while it runs and removes it when it ends, also when it is cancelled; a worker that dies
    leaves a lease that expires after ``lease_ttl_s``, and its slot comes back. Daily caps are
    one counter per system per UTC day; per-run caps one set of step ids per run and system.

    The check-and-count methods stay synchronous, as the Executor calls them: each is one
    round trip to Redis running one Lua script (well under a millisecond on a local network).
    Only waiting for a slot is asynchronous.

    Args:
        client: A synchronous Redis client; closing it is the caller's job.
        limits: The policy's ``rateLimits``.
        namespace: The prefix of every key, so several clusters (or tests) share one Redis.
        clock: Tells the day for daily caps (UTC).
        lease_ttl_s: How long a slot outlives a worker that died holding it. A live call
            renews its lease every third of this, so it must be longer than the longest
            stall of a worker's event loop.
        run_ttl_s: How long a run's per-run counts are kept after its last counted step.
        rng: Jitters the polling of a call waiting for a slot.
    """

    def __init__(
        self,
        client: redis.Redis,
        limits: RateLimits,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        clock: Clock | None = None,
        lease_ttl_s: float = 30.0,
        run_ttl_s: int = _RUN_TTL_S,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(limits, clock=clock)
        if lease_ttl_s <= 0:
            raise ConfigError(f"lease_ttl_s must be positive, not {lease_ttl_s!r}")
        self._redis = client
        self.namespace = namespace
        self.lease_ttl_s = lease_ttl_s
        self._lease_ttl_ms = max(1, round(lease_ttl_s * 1000))
        self._run_ttl_s = run_ttl_s
        self._rng = rng or random.Random()
        self._lease_prefix = f"{socket.gethostname()}:{os.getpid()}:"
        self._acquire = client.register_script(_ACQUIRE_SLOT)
        self._renew = client.register_script(_RENEW_SLOT)
        self._count = client.register_script(_COUNT_SLOTS)
        self._take_commit = client.register_script(_TAKE_COMMIT)
        self._give_back = client.register_script(_GIVE_BACK_COMMIT)
        self._take_run_call = client.register_script(_TAKE_RUN_CALL)

    def __reduce__(self) -> NoReturn:
        _refuse_pickling("RedisToolCaps")

    # -- keys --------------------------------------------------------------------------------

    def slots_key(self, system: str) -> str:
        """The sorted set of ``system``'s leases: member = lease id, score = expiry in ms."""
        return f"{self.namespace}:caps:slots:{system}"

    def peak_key(self) -> str:
        """The hash of the most leases each system held at once."""
        return f"{self.namespace}:caps:peak"

    def commits_key(self, system: str) -> str:
        """Today's commit counter of ``system`` (the day from the clock, UTC)."""
        return f"{self.namespace}:caps:commits:{system}:{self._today().isoformat()}"

    def run_key(self, run_id: str, system: str) -> str:
        """The set of ``run_id``'s step ids counted against ``system``'s per-run cap."""
        return f"{self.namespace}:caps:run:{run_id}:{system}"

    def _run(self, script: Any, what: str, keys: list[str], args: list[Any]) -> Any:
        try:
            return script(keys=keys, args=args)
        except redis.RedisError as exc:
            raise _backend_error(self._redis, what, exc) from exc

    # -- concurrency -------------------------------------------------------------------------

    @asynccontextmanager
    async def slot(self, system: str) -> AsyncIterator[None]:
        """Hold one of the system's slots, cluster-wide, while a call is in flight.

        A call waits here while the system's ``concurrency`` leases are held anywhere in the
        cluster. Redis has no blocking semaphore whose permits expire with a dead holder
        (a BLPOP token list would lose a token for good when its holder is killed), so a
        waiting call polls: a few milliseconds at first, growing to 50 ms, jittered so that
        waiting workers do not call Redis in lockstep. A freed slot is taken within one poll
        interval; who takes it is not first come, first served, but whichever poll runs first.
        """
        limit = self._limits.tools.get(system)
        if limit is None or limit.concurrency is None:
            yield
            return
        lease = self._lease_prefix + uuid.uuid4().hex
        keys = [self.slots_key(system), self.peak_key()]
        args = [lease, limit.concurrency, self._lease_ttl_ms, system]
        delay_s = _POLL_FIRST_S
        while not self._run(self._acquire, "taking a slot", keys, args):
            await asyncio.sleep(delay_s * self._rng.uniform(0.5, 1.0))
            delay_s = min(_POLL_MAX_S, delay_s * 1.5)
        renewer = asyncio.create_task(self._keep_renewing(system, lease))
        try:
            yield
        finally:
            renewer.cancel()
            try:
                self._redis.zrem(self.slots_key(system), lease)
            except redis.RedisError as exc:
                logger.warning(
                    "could not give back a slot of %s (%s); it expires in %s s",
                    system,
                    exc,
                    self.lease_ttl_s,
                )
            try:
                await renewer
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise

    async def _keep_renewing(self, system: str, lease: str) -> None:
        keys = [self.slots_key(system)]
        while True:
            await asyncio.sleep(self.lease_ttl_s / 3)
            try:
                renewed = self._renew(keys=keys, args=[lease, self._lease_ttl_ms])
            except redis.RedisError as exc:  # the next renewal may get through
                logger.warning("could not renew a slot of %s: %s", system, exc)
                continue
            if not renewed:
                # The event loop stalled past the lease's expiry and another call may have
                # taken the slot; re-adding the lease could break the cap, so it is not.
                logger.warning(
                    "a slot of %s expired while its call was still running (stalled over %s s); "
                    "the concurrency cap may be exceeded until the call ends",
                    system,
                    self.lease_ttl_s,
                )
                return

    def in_flight(self, system: str) -> int:
        """Calls to ``system`` holding a slot now, in every worker (unexpired leases)."""
        return int(self._run(self._count, "counting slots", [self.slots_key(system)], []))

    def peak_in_flight(self, system: str) -> int:
        """The most calls to ``system`` that held a slot at one moment, cluster-wide.

        Since the caps' namespace was first used, or since :meth:`reset_peaks`. A system with
        no concurrency cap reads 0.
        """
        try:
            value = self._redis.hget(self.peak_key(), system)
        except redis.RedisError as exc:
            raise _backend_error(self._redis, "reading a peak", exc) from exc
        return int(value or 0)

    def reset_peaks(self) -> None:
        """Forget the peaks of every system (before a benchmark, say)."""
        try:
            self._redis.delete(self.peak_key())
        except redis.RedisError as exc:
            raise _backend_error(self._redis, "resetting peaks", exc) from exc

    # -- daily and per-run caps --------------------------------------------------------------

    def take_commit(self, system: str) -> bool:
        """Count one commit against the system's daily cap, cluster-wide; False when reached.

        Check and count are one script, so workers racing for the last commit of the day
        cannot both get it.
        """
        limit = self._limits.tools.get(system)
        if limit is None or limit.daily_cap is None:
            return True
        args = [limit.daily_cap, _DAILY_TTL_S]
        return bool(
            self._run(self._take_commit, "taking a commit", [self.commits_key(system)], args)
        )

    def give_back_commit(self, system: str) -> None:
        """Undo :meth:`take_commit` for a commit that made no change (it failed for good)."""
        self._run(self._give_back, "giving back a commit", [self.commits_key(system)], [])

    def commits_today(self, system: str) -> int:
        """Commits counted against ``system`` today, by every worker."""
        try:
            value = self._redis.get(self.commits_key(system))
        except redis.RedisError as exc:
            raise _backend_error(self._redis, "reading a daily count", exc) from exc
        return int(value or 0)

    def take_run_call(self, run_id: str, system: str, step_id: str) -> bool:
        """Count step ``step_id`` against the system's calls per run; False when none are left.

        A step already counted stays allowed, in whichever worker it is checked again.
        """
        limit = self._limits.tools.get(system)
        if limit is None or limit.per_run_cap is None:
            return True
        keys = [self.run_key(run_id, system)]
        args = [step_id, limit.per_run_cap, self._run_ttl_s]
        return bool(self._run(self._take_run_call, "taking a per-run call", keys, args))

    def run_calls(self, run_id: str, system: str) -> int:
        """Steps of ``run_id`` counted against ``system``'s per-run cap, by every worker."""
        try:
            return int(self._redis.scard(self.run_key(run_id, system)))
        except redis.RedisError as exc:
            raise _backend_error(self._redis, "reading a per-run count", exc) from exc

    def count_from_audit(
        self,
        records: Iterable[AuditRecord],
        *,
        system_of: Callable[[str], str | None],
        system_called: Callable[[str], str | None] | None = None,
    ) -> None:
        """Seed the shared counters from an audit log, without counting anything twice.

        The shared counters already hold every worker's commits, counted as they happened,
        so a worker's audit log must not be added to them again. So:

        * a day's commit count is set from the log only when Redis has no count for today
          (Redis was flushed or restarted empty); an existing count is left as it is;
        * a run's counted steps are a set, so the log's steps are added to it: a step
          counted already is not counted again.

        Args:
            records: The audit log's records (best: the log every worker writes to).
            system_of: The system a tool writes to, or None for a tool that does not write.
            system_called: The system any tool reaches; with it, per-run counts are seeded.
        """
        local = ToolCaps(self._limits, clock=self._clock)
        local.count_from_audit(records, system_of=system_of, system_called=system_called)
        try:
            with self._redis.pipeline(transaction=False) as pipe:
                for (system, day), count in local._commits.items():
                    key = f"{self.namespace}:caps:commits:{system}:{day.isoformat()}"
                    pipe.set(key, count, nx=True, ex=_DAILY_TTL_S)
                for (run_id, system), steps in local._run_calls.items():
                    if steps:
                        pipe.sadd(self.run_key(run_id, system), *sorted(steps))
                        pipe.expire(self.run_key(run_id, system), self._run_ttl_s)
                pipe.execute()
        except redis.RedisError as exc:
            raise _backend_error(self._redis, "seeding counts from the audit log", exc) from exc


class RedisLLMBudget:
    """:class:`~agentlab.llm.LLMBudget` whose buckets live in Redis, shared by all workers.

    Both token buckets (requests and tokens per minute) and the 429 pause are one Redis hash,
    refilled and taken by one Lua script on Redis time, so workers' clocks do not matter.
    A request waits (never fails) until both buckets hold enough, as with LLMBudget.

    Fairness: within one process, waiters are served first come, first served (a local lock
    queues them, as in LLMBudget). Across processes it is not: each process's head waiter
    sleeps until the buckets should hold enough and then tries again, and whichever
    process's script reaches Redis first takes what has refilled. No request is reserved, so
    a large request in one process may be overtaken by smaller ones from others; every
    process gets through, and the cluster as a whole never goes over the limits.

    Args:
        client: A synchronous Redis client; closing it is the caller's job.
        requests_per_minute: Requests allowed per minute, cluster-wide; also the largest burst.
        tokens_per_minute: Tokens allowed per minute, cluster-wide; also the largest burst.
        namespace: The prefix of the budget's key.
        name: Tells budgets of several endpoints apart (the key is ``<namespace>:llm:<name>``).
        clock: Seconds to use instead of Redis ``TIME``, for exact tests; every client of one
            budget must then share it. By default Redis time, and ``time.monotonic`` to
            measure waits.
        sleep: An awaitable sleep; ``asyncio.sleep`` by default.
        on_wait: Called with a sentence each time a request must wait, as for LLMBudget.

    Raises:
        ConfigError: a limit is not a positive whole number.
    """

    def __init__(
        self,
        client: redis.Redis,
        requests_per_minute: int,
        tokens_per_minute: int,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        name: str = "default",
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        on_wait: Callable[[str], None] | None = None,
    ) -> None:
        check_limits(requests_per_minute, tokens_per_minute)
        self._redis = client
        self.requests_per_minute = requests_per_minute
        self.tokens_per_minute = tokens_per_minute
        self.key = f"{namespace}:llm:{name}"
        self._clock = clock
        self._sleep = sleep
        self._on_wait = on_wait
        self._take = client.register_script(_TAKE_BUDGET)
        self._settle = client.register_script(_SETTLE_BUDGET)
        self._pause = client.register_script(_PAUSE_BUDGET)
        self._locks: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}
        self._requests_granted = 0
        self._total_waited_s = 0.0

    def __reduce__(self) -> NoReturn:
        _refuse_pickling("RedisLLMBudget")

    @classmethod
    def from_policy(
        cls,
        policy: Policy,
        *,
        client: redis.Redis,
        namespace: str = DEFAULT_NAMESPACE,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        on_wait: Callable[[str], None] | None = None,
    ) -> RedisLLMBudget | None:
        """The shared budget a policy's ``rateLimits.llm`` block sets.

        Args:
            policy: The policy.
            client: As for the constructor.
            namespace: As for the constructor.
            clock: As for the constructor.
            sleep: As for the constructor.
            on_wait: As for the constructor.

        Returns:
            The budget, or None when the policy sets no LLM limits.
        """
        limits = policy.rate_limits.llm
        if limits is None:
            return None
        return cls(
            client,
            limits.requests_per_minute,
            limits.tokens_per_minute,
            namespace=namespace,
            name=limits.provider,
            clock=clock,
            sleep=sleep,
            on_wait=on_wait,
        )

    @property
    def requests_granted(self) -> int:
        """How many requests :meth:`acquire` has let through in this process, retries included."""
        return self._requests_granted

    @property
    def total_waited_s(self) -> float:
        """The seconds this process's requests together have waited for the budget."""
        return self._total_waited_s

    def cluster_requests_granted(self) -> int:
        """Requests granted by every client of this budget, while its key lived in Redis.

        The key expires a minute after the buckets are full again, so this counts a busy
        period, not all time.
        """
        return int(self._call(lambda: self._redis.hget(self.key, "granted"), "reading") or 0)

    def _now_arg(self) -> str:
        return "" if self._clock is None else repr(self._clock())

    def _elapsed_clock(self) -> float:
        return time.monotonic() if self._clock is None else self._clock()

    def _limits_args(self) -> list[Any]:
        return [self._now_arg(), self.requests_per_minute, self.tokens_per_minute]

    def _call(self, call: Callable[[], Any], what: str) -> Any:
        try:
            return call()
        except redis.RedisError as exc:
            raise _backend_error(self._redis, f"{what} the LLM budget", exc) from exc

    def _lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            for old in [old for old in self._locks if old.is_closed()]:
                del self._locks[old]
            lock = self._locks[loop] = asyncio.Lock()
        return lock

    async def acquire(self, estimated_tokens: int) -> float:
        """Wait until one request of about ``estimated_tokens`` fits cluster-wide, then take it.

        Args:
            estimated_tokens: Prompt tokens plus the completion tokens the request may use;
                corrected afterwards with :meth:`settle`.

        Returns:
            The seconds this call waited; 0 when it did not.

        Raises:
            ConfigError: the request needs more tokens than ``tokens_per_minute`` allows.
            BackendError: Redis cannot be reached.
        """
        if estimated_tokens < 0:
            raise ValueError(f"estimated_tokens must be >= 0, not {estimated_tokens}")
        if estimated_tokens > self.tokens_per_minute:
            raise ConfigError(
                f"LLM budget: a request of about {estimated_tokens} tokens is larger than "
                f"tokens_per_minute ({self.tokens_per_minute}/min), so it could never be sent",
                hint="raise rateLimits.llm.tokens_per_minute in the policy to the endpoint's "
                "limit, or send a shorter prompt or a lower max_tokens",
            )
        entered = self._elapsed_clock()
        lock = self._lock()
        has_waited = lock.locked()
        async with lock:
            while True:
                args = [*self._limits_args(), estimated_tokens, _TOLERANCE_S]
                answer = self._call(
                    lambda args=args: self._take(keys=[self.key], args=args), "taking from"
                )
                if int(answer[0]) == 1:
                    break
                wait_s = float(answer[1])
                message = f"LLM budget: waiting {_format_s(wait_s)} for {self._reason(answer)}"
                logger.info("%s", message)
                if self._on_wait is not None:
                    self._on_wait(message)
                has_waited = True
                await self._sleep(wait_s)
            waited = max(0.0, self._elapsed_clock() - entered) if has_waited else 0.0
            self._requests_granted += 1
            self._total_waited_s += waited
        return waited

    def _reason(self, answer: list[Any]) -> str:
        what = _text(answer[2])
        if what == "requests":
            return f"requests-per-minute ({self.requests_per_minute}/min)"
        if what == "tokens":
            return f"tokens-per-minute ({self.tokens_per_minute}/min)"
        return _text(answer[3]) or "the endpoint's 429"

    def settle(self, estimated_tokens: int, actual_tokens: int) -> None:
        """Correct the shared token bucket once the answer says how many tokens were used.

        Args:
            estimated_tokens: What was passed to :meth:`acquire`.
            actual_tokens: The answer's prompt plus completion tokens; 0 for a refused request.
        """
        args = [*self._limits_args(), estimated_tokens - actual_tokens]
        self._call(lambda: self._settle(keys=[self.key], args=args), "settling")

    def backoff(self, retry_after_s: float) -> None:
        """Pause every request of every worker sharing this budget, after a 429.

        Args:
            retry_after_s: How long the endpoint asked to wait (its ``retry-after``).
        """
        delay_s = max(0.0, retry_after_s)
        reason = f"the endpoint's 429 (it asked to retry after {_format_s(retry_after_s)})"
        args = [*self._limits_args(), repr(delay_s), reason]
        self._call(lambda: self._pause(keys=[self.key], args=args), "pausing")


def _format_s(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass
class SharedLimits:
    """The caps and the LLM budget of one worker, shared with the cluster through Redis.

    Close it (or use it as a context manager) to close its Redis connections.
    """

    caps: RedisToolCaps
    budget: RedisLLMBudget | None
    """None when the policy sets no LLM limits."""
    url: str = field(repr=False)
    """The Redis URL, with any password replaced by ``***``."""
    _client: redis.Redis = field(repr=False)

    def close(self) -> None:
        """Close the Redis connections."""
        self._client.close()

    def __enter__(self) -> SharedLimits:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __reduce__(self) -> NoReturn:
        _refuse_pickling("SharedLimits")


def open_shared_limits(
    redis_url: str,
    policy: Policy,
    *,
    namespace: str = DEFAULT_NAMESPACE,
    clock: Clock | None = None,
    on_wait: Callable[[str], None] | None = None,
    lease_ttl_s: float = 30.0,
    connect_timeout_s: float = 5.0,
) -> SharedLimits:
    """Connect to Redis and build the policy's shared caps and LLM budget.

    Args:
        redis_url: ``redis://[:password@]host:6379/0``, ``rediss://...`` or
            ``unix:///path/redis.sock``.
        policy: Its ``rateLimits`` set the caps and the budget.
        namespace: The prefix of every key; workers of one cluster must use the same one.
        clock: Tells the day for daily caps.
        on_wait: Progress output for budget waits.
        lease_ttl_s: As for :class:`RedisToolCaps`.
        connect_timeout_s: How long to try to connect (and the longest a call may take).

    Raises:
        ConfigError: the URL is not a Redis URL, or Redis cannot be reached there.
    """
    shown = redact_redis_url(redis_url)
    if urlsplit(redis_url).scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(
            f"{shown!r} is not a Redis URL",
            hint="pass --redis-url redis://localhost:6379/0 (or rediss://, unix://)",
        )
    try:
        client = redis.Redis.from_url(
            redis_url,
            socket_connect_timeout=connect_timeout_s,
            socket_timeout=connect_timeout_s,
            decode_responses=True,
        )
    except ValueError as exc:
        raise ConfigError(
            f"cannot use the Redis URL {shown}: {exc}",
            hint="pass --redis-url redis://localhost:6379/0",
        ) from None
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        raise ConfigError(
            f"cannot reach Redis at {shown}: {type(exc).__name__}: {exc}",
            hint="start redis-server or pass --redis-url redis://host:6379/0 "
            "(shared caps and budgets need a running Redis)",
        ) from None
    caps = RedisToolCaps(
        client, policy.rate_limits, namespace=namespace, clock=clock, lease_ttl_s=lease_ttl_s
    )
    budget = RedisLLMBudget.from_policy(policy, client=client, namespace=namespace, on_wait=on_wait)
    logger.info("shared caps and LLM budget in Redis at %s, namespace %r", shown, namespace)
    return SharedLimits(caps=caps, budget=budget, url=shown, _client=client)


__all__ = [
    "DEFAULT_NAMESPACE",
    "RedisLLMBudget",
    "RedisToolCaps",
    "SharedLimits",
    "open_shared_limits",
    "redact_redis_url",
]
