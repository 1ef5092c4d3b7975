"""A bounded masker for the tokens this provider learns at run time (issue 21).

Airflow's secrets masker keeps one regular expression of every secret a process has ever masked and
recompiles all of it on each new one (``SecretsMasker.add_mask``): adding the n-th secret costs time
proportional to n, holding the GIL, and every log line is matched against all of them. A triggerer
lives for weeks and learns two new tokens per connection per hour, so that cost grows without end.

The tokens here are different from a connection's password: each can be used for a limited time
(an access token about an hour; a refresh token until the next rotation supersedes it, after which
Microsoft tells clients to discard it). So the provider keeps them out of Airflow's ever-growing list
and masks them itself with a bounded set of literal strings (:class:`LiveTokens`): adding one costs
the same whatever came before, and redaction is a substring test per live token.

The set is wired into every place Airflow redacts in this process, found by feature detection
rather than by version number:

* each Airflow ``SecretsMasker`` instance of this process (Airflow 2's logging filter, Airflow 3's
  task-SDK and core maskers): its ``replacer`` becomes Airflow's own pattern followed by the live
  tokens, so log records, ``redact()`` of rendered fields and XComs, and exception text are covered;
* the structlog processor chains (Airflow 3): a task or trigger process that sends its logs to a
  supervisor does not redact them itself (the supervisor does, with secrets it learnt from
  ``MaskSecret`` messages), so the provider's redaction runs there before a line leaves the process.

Once installed (the hook does it before reading a connection), Airflow's own ``add_mask`` compiles
lazily, on the next redaction (:class:`_LazyRe`): the secrets of 50 connections read at once cost
one compilation instead of 50 ever longer ones.

Where neither can be installed the token goes to Airflow's ``mask_secret`` as before: protection
first, cost second. ``MSADS_MASKER=airflow`` in the environment does the same on purpose (a way
back, should a future Airflow change its masker in a way feature detection does not see).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import re
import sys
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

log = logging.getLogger(__name__)

#: How many tokens stay masked at most. Each connection has at most two usable tokens at a time
#: (the live access token and the newest refresh token) plus the ones a concurrent refresh on another
#: machine superseded a moment ago; 512 covers ~250 connections refreshing at once, or a day of hourly
#: rotations of ten connections, while a redaction stays a few microseconds.
MAX_TOKENS = 512

#: How long a token stays masked after it was last seen. Access tokens live about an hour; a refresh
#: token is superseded at the next rotation (hourly in a busy deployment) and should then be
#: discarded; one that is not rotated stays live by being seen again on every use.
RETENTION_SECONDS = 24 * 3600.0

#: Shorter strings are not tokens; masking them would garble ordinary text (Airflow skips < 5 chars).
MIN_LENGTH = 16

REPLACEMENT = "***"


class LiveTokens:
    """The tokens that can still be used, newest last, bounded in count and age.

    Adding a token and redacting a string are both independent of how many tokens were ever added:
    the cost per refresh stays flat for the life of the process.
    """

    def __init__(
        self,
        *,
        max_tokens: int = MAX_TOKENS,
        retention: float = RETENTION_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_tokens = max_tokens
        self.retention = retention
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()
        # Redaction reads an immutable snapshot and never takes the lock (it runs on every log line,
        # from any thread, and may run inside a logging call made while the lock is held elsewhere).
        self._snapshot: tuple[str, ...] = ()

    def add(self, token: str) -> bool:
        """Mask ``token`` from now on; False for a value too short to be a token."""
        if not isinstance(token, str) or len(token) < MIN_LENGTH:
            return False
        now = self._clock()
        with self._lock:
            self._seen.pop(token, None)
            self._seen[token] = now
            cutoff = now - self.retention
            while self._seen and (len(self._seen) > self.max_tokens or next(iter(self._seen.values())) < cutoff):
                self._seen.popitem(last=False)
            # Longest first, so that a token containing another is replaced whole.
            self._snapshot = tuple(sorted(self._seen, key=len, reverse=True))
        return True

    def __len__(self) -> int:
        return len(self._snapshot)

    def __bool__(self) -> bool:
        return bool(self._snapshot)

    def __contains__(self, token: object) -> bool:
        return token in self._snapshot

    def redact(self, text: str, replacement: str = REPLACEMENT) -> str:
        for token in self._snapshot:
            if token in text:
                text = text.replace(token, replacement)
        return text

    def redact_value(self, value: Any, replacement: str = REPLACEMENT, depth: int = 0) -> Any:
        """Redact strings inside dicts, lists and tuples (structlog event dicts, JSON tracebacks)."""
        if not self._snapshot or depth > 8:
            return value
        if isinstance(value, str):
            return self.redact(value, replacement)
        if isinstance(value, dict):
            return {k: self.redact_value(v, replacement, depth + 1) for k, v in value.items()}
        if isinstance(value, list):
            return [self.redact_value(v, replacement, depth + 1) for v in value]
        if isinstance(value, tuple):
            return tuple(self.redact_value(v, replacement, depth + 1) for v in value)
        if isinstance(value, BaseException):
            self._redact_exception(value, replacement)
        elif not isinstance(value, type) and hasattr(value, "model_dump"):
            # A pydantic message (Airflow 3 logs comms messages at DEBUG): rendered with repr later.
            text = _safe_repr(value)
            if text is not None and any(token in text for token in self._snapshot):
                return self.redact(text, replacement)
        return value

    def _redact_exception(self, exc: BaseException, replacement: str) -> None:
        """In place, like Airflow's masker: the renderer formats the exception object itself."""
        seen: set[int] = set()
        current: BaseException | None = exc
        while current is not None and id(current) not in seen and len(seen) < 8:
            seen.add(id(current))
            with contextlib.suppress(Exception):  # an extension type whose args cannot be set
                current.args = tuple(self.redact_value(a, replacement, 7) for a in current.args)
            current = current.__cause__ or current.__context__

    def clear(self) -> None:
        with self._lock:
            self._seen.clear()
            self._snapshot = ()


def _safe_repr(value: Any) -> str | None:
    try:
        return repr(value)
    except Exception:
        return None


#: The one set of this process.
LIVE_TOKENS = LiveTokens()


class _Replacer:
    """What Airflow's masker finds in ``replacer``: its own pattern, then the live tokens.

    Airflow calls ``replacer.sub(replacement, text)`` and tests ``replacer`` for truth; nothing else.
    """

    __slots__ = ("pattern", "tokens")

    def __init__(self, pattern: Any, tokens: LiveTokens) -> None:
        self.pattern = pattern
        self.tokens = tokens

    def sub(self, repl: Any, string: str, count: int = 0) -> str:
        if self.pattern is not None:
            string = self.pattern.sub(repl, string, count)
        return self.tokens.redact(string, repl if isinstance(repl, str) else REPLACEMENT)

    def __bool__(self) -> bool:
        return self.pattern is not None or bool(self.tokens)


_bounded_classes: dict[type, type] = {}


def _bounded_class(cls: type) -> type:
    """A subclass of Airflow's ``SecretsMasker`` whose ``replacer`` also masks the live tokens.

    Airflow assigns ``self.replacer`` on every ``add_mask`` and ``reset_masker``; the property keeps
    what Airflow assigns and hands back the combination, so Airflow's own masking is untouched.
    """
    if getattr(cls, "_msads_bounded", False):
        return cls
    if cls not in _bounded_classes:

        def _get(self: Any) -> Any:
            pattern = self.__dict__.get("_msads_pattern")
            if pattern is None and not LIVE_TOKENS:
                return None
            return _Replacer(pattern, LIVE_TOKENS)

        def _set(self: Any, value: Any) -> None:
            self.__dict__["_msads_pattern"] = value

        _bounded_classes[cls] = type(
            cls.__name__,
            (cls,),
            {"replacer": property(_get, _set), "_msads_bounded": True, "__module__": cls.__module__},
        )
    return _bounded_classes[cls]


#: Where Airflow keeps its masker singletons, newest layout first. The second group are the
#: Airflow 3.0 task-SDK module (a deprecated shim on 3.1+) and Airflow 2's module (also in 3.0 core):
#: imported only when the first group is absent, so that 3.1+ never imports a deprecated shim.
_MASKER_MODULES: tuple[tuple[str, ...], ...] = (
    ("airflow.sdk._shared.secrets_masker", "airflow._shared.secrets_masker"),
    ("airflow.sdk.execution_time.secrets_masker", "airflow.utils.log.secrets_masker"),
)


def airflow_maskers() -> list[Any]:
    """Airflow's masker instances in this process (one or two, depending on the version)."""
    found: dict[int, Any] = {}
    for group in _MASKER_MODULES:
        for name in group:
            # Once one is found, older layouts count only if something already imported them (a
            # version in between may have both); a deprecated shim is never imported by us.
            if found and name not in sys.modules:
                continue
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    module = importlib.import_module(name)
                masker = module._secrets_masker()
            except Exception:  # absent in this version, or (Airflow 2) logging not configured yet
                log.debug("No secrets masker in %s.", name, exc_info=True)
                continue
            found.setdefault(id(masker), masker)
    return list(found.values())


class _LazyPattern:
    """A compiled pattern made on first use: Airflow compiles on every ``add_mask``, needed or not.

    Reading 50 connections at once adds 50 secrets (Airflow masks each connection's own) and, without
    a log line in between, needs one compiled pattern, not 50 ever larger ones.
    """

    __slots__ = ("_compiled", "flags", "source")

    def __init__(self, source: Any, flags: int) -> None:
        self.source = source
        self.flags = flags
        self._compiled: Any = None

    def compiled(self) -> Any:
        if self._compiled is None:
            self._compiled = re.compile(self.source, self.flags)
        return self._compiled

    def sub(self, repl: Any, string: str, count: int = 0) -> str:
        return self.compiled().sub(repl, string, count)  # type: ignore[no-any-return]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.compiled(), name)


class _LazyRe:
    """``re`` for the module that defines Airflow's ``add_mask``: ``compile`` is deferred, the rest is ``re``."""

    def compile(self, pattern: Any, flags: int = 0) -> _LazyPattern:
        return _LazyPattern(pattern, flags)

    def __getattr__(self, name: str) -> Any:
        return getattr(re, name)


_LAZY_RE = _LazyRe()


def _defer_compilation(masker: Any) -> None:
    """Point the ``re`` of the module that defines ``add_mask`` at :class:`_LazyRe`, if it is ``re``."""
    namespace = getattr(getattr(type(masker), "add_mask", None), "__globals__", None)
    if isinstance(namespace, dict) and namespace.get("re") is re:
        namespace["re"] = _LAZY_RE


def _wrap(masker: Any) -> bool:
    if getattr(type(masker), "_msads_bounded", False):
        return True
    if not (hasattr(masker, "replacer") and callable(getattr(masker, "add_mask", None))):
        return False
    if isinstance(getattr(type(masker), "replacer", None), property):
        return False  # someone else made it a property: do not stack on what we do not know
    try:
        current = masker.__dict__.pop("replacer", getattr(type(masker), "replacer", None))
        masker.__class__ = _bounded_class(type(masker))
        masker.__dict__["_msads_pattern"] = current
        _defer_compilation(masker)
    except Exception:
        log.debug("Could not extend Airflow's secrets masker.", exc_info=True)
        return False
    return True


def redact_event(logger: Any, method_name: str, event_dict: Any) -> Any:
    """structlog processor: the live tokens out of every field of the event."""
    if LIVE_TOKENS and isinstance(event_dict, dict):
        return LIVE_TOKENS.redact_value(event_dict)
    return event_dict


class _RedactThenRender:
    """The chain's renderer, given events with the live tokens redacted.

    Replacing the last processor is one item assignment: a thread iterating over the chain at that
    moment runs either the old renderer or this one, never both (an insertion could shift the
    renderer under it and run it twice).
    """

    __slots__ = ("renderer",)

    def __init__(self, renderer: Any) -> None:
        self.renderer = renderer

    def __call__(self, logger: Any, method_name: str, event_dict: Any) -> Any:
        return self.renderer(logger, method_name, redact_event(logger, method_name, event_dict))


def _redact_before_rendering(chain: Any) -> bool:
    if not isinstance(chain, list) or not chain:
        return False
    if not isinstance(chain[-1], _RedactThenRender):
        chain[-1] = _RedactThenRender(chain[-1])
    return True


def _structlog_chains() -> Iterable[Any]:
    """structlog's configured processor list and those of structlog formatters on stdlib handlers.

    Both are lists that loggers (cached ones too) share by reference: inserting into them reaches
    loggers made before this call.
    """
    structlog = sys.modules.get("structlog")
    if structlog is None:
        return
    try:
        yield structlog.get_config().get("processors")
    except Exception:
        log.debug("Could not read structlog's configuration.", exc_info=True)
    formatter_type = getattr(getattr(structlog, "stdlib", None), "ProcessorFormatter", None)
    if formatter_type is None:
        return
    for logger in (logging.getLogger(), logging.getLogger("airflow.task"), logging.getLogger("airflow.triggerer")):
        for handler in logger.handlers:
            formatter = handler.formatter
            if isinstance(formatter, formatter_type):
                yield getattr(formatter, "processors", None)


def sends_logs_to_supervisor() -> bool:
    """An Airflow 3 task or trigger process: its log lines leave unredacted for the supervisor."""
    module = sys.modules.get("airflow.sdk.execution_time.task_runner")
    comms = getattr(module, "SUPERVISOR_COMMS", None)
    return comms is not None and type(comms).__name__ != "InProcessSupervisorComms"


def install() -> bool:
    """Make every redaction of this process mask the live tokens; True if that is assured.

    Idempotent and cheap (a few lookups): called on every token, so that a masker or a logging
    configuration made after the first token is covered too.
    """
    maskers = airflow_maskers()
    wrapped = bool(maskers) and all([_wrap(m) for m in maskers])
    chains = [_redact_before_rendering(chain) for chain in _structlog_chains()]
    if sends_logs_to_supervisor():
        return wrapped and any(chains)
    return wrapped


def mask_token(token: str, fallback: Callable[[str], None]) -> None:
    """Mask a token learnt at run time: in the bounded set, or with ``fallback`` (Airflow's masker).

    The token is never sent to Airflow's masker when the bounded set covers this process: no
    ``MaskSecret`` message either, so a supervisor (and Airflow 3's in-process ``dag.test()``
    supervisor, which logs those messages at DEBUG) never sees it.
    """
    if _way_back() or not LIVE_TOKENS.add(token):
        fallback(token)
        return
    if not install():
        fallback(token)


def _way_back() -> bool:
    return os.environ.get("MSADS_MASKER", "").strip().lower() == "airflow"


def prepare() -> None:
    """Install before a connection is read: Airflow masks the connection's secrets as it reads it,
    and with :class:`_LazyRe` in place those additions compile once, on the next redaction."""
    if not _way_back():
        install()


def mask_runtime_secret(value: str) -> None:
    """Mask a token learnt at run time (tokens are not in the Connection, so Airflow cannot know them).

    The provider's bounded masker (``_masking``) takes it where it can be installed: constant cost
    per token, where Airflow's masker recompiles one regex of every secret the process has ever seen
    (issue 21). Otherwise Airflow's ``mask_secret`` takes it, as before.
    """
    mask_token(value, _airflow_mask)


def prepare_masking() -> None:
    """Before a connection is read: see ``_masking.prepare``. Never fails the caller."""
    try:
        prepare()
    except Exception:  # masking setup is an optimisation here; mask_runtime_secret still protects
        log.debug("Could not prepare the provider's masker.", exc_info=True)


def _airflow_mask(value: str) -> None:
    """Airflow's masker; on a running event loop (the triggerer) in a worker thread.

    Adding a mask there recompiles a regex of every secret seen so far, which all other triggers
    would wait for. Tokens are never logged, so masking a moment later loses nothing.
    """
    from airflow_provider_msads.compat.versions import airflow_mask_secret

    mask_secret = airflow_mask_secret()
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        mask_secret(value)
        return
    loop.run_in_executor(None, _mask_quietly, mask_secret, value)


def _mask_quietly(mask: Any, value: str) -> None:
    try:
        mask(value)
    except Exception:  # the loop may be closing; the masking is defensive anyway
        log.debug("Could not register a secret with the masker.", exc_info=True)
