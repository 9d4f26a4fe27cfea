"""One typed settings object, read from the environment on demand (never at import time)."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

Mode = Literal["production", "development", "test"]
Serve = Literal["both", "reporter", "workspace"]

_MODES: tuple[Mode, ...] = ("production", "development", "test")
_SERVES: tuple[Serve, ...] = ("both", "reporter", "workspace")
LOCALES: tuple[str, ...] = ("zh_CN", "zh_TW", "en")


_REDIS_PREFIX = re.compile(r"[A-Za-z0-9_-]{1,40}")


class SettingsError(ValueError):
    """A setting is missing or invalid; the message names the variable and what is expected."""


@dataclass(frozen=True)
class Settings:
    mode: Mode = "production"
    debug: bool = False
    data_dir: Path = Path("var")
    database_url: str = ""
    redis_url: str | None = None
    # the start of every Redis key of this installation ("<prefix>:...", "<prefix>_sessions:..."),
    # so that two installations (or benchmark runs) can share one Redis database
    redis_prefix: str = "portal"
    host: str = "127.0.0.1"
    port: int = 8000
    serve: Serve = "both"
    onion_address: str | None = None
    # reverse proxies whose X-Forwarded-Proto/-For uvicorn believes (IPs or networks); none
    # by default, so a client cannot claim a scheme or address of its choosing
    trusted_proxies: tuple[str, ...] = ()
    max_file_bytes: int = 200 * 1024 * 1024
    max_files_per_submission: int = 20
    argon2_profile: Literal["production", "test"] = "production"
    default_locale: str = "zh_CN"
    staff_idle_timeout_s: int = 30 * 60
    staff_absolute_timeout_s: int = 8 * 60 * 60
    reporter_idle_timeout_s: int = 15 * 60
    reporter_absolute_timeout_s: int = 60 * 60
    receipt_global_budget_per_minute: int = 120
    receipt_session_budget: int = 5
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = True
    smtp_sender: str = "portal@localhost"
    # rewards (W11), in RMB, and retention per record class in years (W13)
    reward_min: int = 2000
    reward_max: int = 50000
    # approvals a reward needs by amount (PORTAL_REWARD_APPROVALS="10000:1,2": one approver up
    # to 10,000 RMB, two different ones above): (up to amount, approvals), the last open-ended
    reward_approvals: tuple[tuple[int | None, int], ...] = ((10000, 1), (None, 2))
    retention_unsubstantiated_years: int = 3
    retention_substantiated_years: int = 10
    retention_identity_years: int = 3
    retention_audit_years: int = 3
    # stage deadlines (W10): the cn or eu profile, and per-stage rules from
    # PORTAL_DEADLINE_<STAGE>=15wd|30d|3m|10min and PORTAL_DEADLINE_<STAGE>_EXTENSION=<n>
    deadline_profile: Literal["cn", "eu"] = "cn"
    deadline_rules: Mapping[str, str] = field(default_factory=dict)
    # S3-compatible file store (O2); the local file store when no bucket is set
    s3_bucket: str | None = None
    s3_endpoint: str | None = None
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    s3_region: str = "us-east-1"
    # notifications: new-case counts are batched in slots of this many hours (R9); exports cap
    notify_batch_hours: int = 4
    export_max_mb: int = 256
    # readiness (/readyz) fails when the file store's file system has less free space than this
    min_free_bytes: int = 512 * 1024 * 1024
    extra: Mapping[str, str] = field(default_factory=dict)

    # --- derived -----------------------------------------------------------------
    @property
    def secure_cookies(self) -> bool:
        return self.mode == "production"

    @property
    def keyring_dir(self) -> Path:
        return self.data_dir / "secrets"

    @property
    def files_dir(self) -> Path:
        return self.data_dir / "files"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def with_overrides(self, **changes: object) -> Settings:
        new = replace(self, **changes)  # type: ignore[arg-type]
        new.validate()
        return new

    # --- construction ---------------------------------------------------------------
    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read every PORTAL_* variable (plus DATABASE_URL and REDIS_URL) and validate."""
        e = dict(os.environ if env is None else env)
        data_dir = Path(e.get("PORTAL_DATA_DIR", "var")).expanduser()
        mode = _choice(e, "PORTAL_MODE", _MODES, "production")
        settings = cls(
            mode=mode,
            debug=_bool(e, "PORTAL_DEBUG", False),
            data_dir=data_dir,
            database_url=(_secret(e, "DATABASE_URL") or "").strip()
            or f"sqlite+aiosqlite:///{(data_dir / 'portal.db').as_posix()}",
            redis_url=_secret(e, "REDIS_URL"),
            redis_prefix=e.get("PORTAL_REDIS_PREFIX") or "portal",
            host=e.get("PORTAL_HOST", "127.0.0.1"),
            port=_int(e, "PORTAL_PORT", 8000, 1, 65535),
            serve=_choice(e, "PORTAL_SERVE", _SERVES, "both"),
            onion_address=e.get("PORTAL_ONION_ADDRESS") or None,
            trusted_proxies=_address_list(e, "PORTAL_TRUSTED_PROXIES"),
            max_file_bytes=_int(e, "PORTAL_MAX_FILE_MB", 200, 1, 100_000) * 1024 * 1024,
            max_files_per_submission=_int(e, "PORTAL_MAX_FILES", 20, 1, 200),
            argon2_profile=_choice(
                e, "PORTAL_ARGON2_PROFILE", ("production", "test"), "production"
            ),
            default_locale=_choice(e, "PORTAL_DEFAULT_LOCALE", LOCALES, "zh_CN"),
            staff_idle_timeout_s=_int(e, "PORTAL_STAFF_IDLE_MINUTES", 30, 1, 24 * 60) * 60,
            staff_absolute_timeout_s=_int(e, "PORTAL_STAFF_ABSOLUTE_HOURS", 8, 1, 72) * 3600,
            reporter_idle_timeout_s=_int(e, "PORTAL_REPORTER_IDLE_MINUTES", 15, 1, 240) * 60,
            reporter_absolute_timeout_s=_int(e, "PORTAL_REPORTER_ABSOLUTE_MINUTES", 60, 5, 24 * 60)
            * 60,
            receipt_global_budget_per_minute=_int(
                e, "PORTAL_RECEIPT_GLOBAL_PER_MINUTE", 120, 1, 100_000
            ),
            receipt_session_budget=_int(e, "PORTAL_RECEIPT_SESSION_BUDGET", 5, 1, 100),
            smtp_host=e.get("PORTAL_SMTP_HOST") or None,
            smtp_port=_int(e, "PORTAL_SMTP_PORT", 587, 1, 65535),
            smtp_user=e.get("PORTAL_SMTP_USER") or None,
            smtp_password=_secret(e, "PORTAL_SMTP_PASSWORD"),
            smtp_starttls=_bool(e, "PORTAL_SMTP_STARTTLS", True),
            smtp_sender=e.get("PORTAL_SMTP_SENDER", "portal@localhost"),
            reward_min=_int(e, "PORTAL_REWARD_MIN", 2000, 0, 10_000_000),
            reward_max=_int(e, "PORTAL_REWARD_MAX", 50000, 1, 10_000_000),
            reward_approvals=_reward_approvals(e),
            retention_unsubstantiated_years=_int(
                e, "PORTAL_RETENTION_UNSUBSTANTIATED_YEARS", 3, 3, 100
            ),
            retention_substantiated_years=_int(
                e, "PORTAL_RETENTION_SUBSTANTIATED_YEARS", 10, 3, 100
            ),
            retention_identity_years=_int(e, "PORTAL_RETENTION_IDENTITY_YEARS", 3, 1, 100),
            retention_audit_years=_int(e, "PORTAL_RETENTION_AUDIT_YEARS", 3, 3, 100),
            notify_batch_hours=_int(e, "PORTAL_NOTIFY_BATCH_HOURS", 4, 1, 24),
            export_max_mb=_int(e, "PORTAL_EXPORT_MAX_MB", 256, 1, 4096),
            min_free_bytes=_int(e, "PORTAL_MIN_FREE_MB", 512, 0, 10_000_000) * 1024 * 1024,
            deadline_profile=_choice(e, "PORTAL_DEADLINE_PROFILE", ("cn", "eu"), "cn"),
            deadline_rules=_deadline_rules(e),
            s3_bucket=e.get("PORTAL_S3_BUCKET") or None,
            s3_endpoint=e.get("PORTAL_S3_ENDPOINT") or None,
            s3_access_key=_secret(e, "PORTAL_S3_ACCESS_KEY"),
            s3_secret_key=_secret(e, "PORTAL_S3_SECRET_KEY"),
            s3_region=e.get("PORTAL_S3_REGION") or "us-east-1",
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.mode == "production" and self.debug:
            raise SettingsError(
                "PORTAL_DEBUG=1 is refused in production mode: debug pages can reveal "
                "stack traces. Set PORTAL_MODE=development to debug locally."
            )
        if self.mode == "production" and self.argon2_profile != "production":
            raise SettingsError(
                "PORTAL_ARGON2_PROFILE=test is for test suites only and is refused in "
                "production mode."
            )
        if not (
            self.database_url.startswith("sqlite+aiosqlite://")
            or self.database_url.startswith("postgresql+asyncpg://")
        ):
            raise SettingsError(
                "DATABASE_URL must start with 'sqlite+aiosqlite://' or "
                "'postgresql+asyncpg://' (for example "
                "postgresql+asyncpg://portal:secret@db:5432/portal)."
            )
        if self.redis_url is not None:
            if not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
                raise SettingsError("REDIS_URL must start with redis://, rediss:// or unix://")
            if self.mode == "production" and not _redis_has_password(self.redis_url):
                raise SettingsError(
                    "REDIS_URL has no password: in production mode the portal refuses an "
                    "unauthenticated Redis (use redis://:PASSWORD@host:6379/0)."
                )
        if not _REDIS_PREFIX.fullmatch(self.redis_prefix):
            raise SettingsError(
                "PORTAL_REDIS_PREFIX takes 1 to 40 letters, digits, '_' or '-' (default portal)"
            )
        if self.s3_endpoint is not None and not self.s3_endpoint.startswith(
            ("https://", "http://")
        ):
            raise SettingsError("PORTAL_S3_ENDPOINT must be an http:// or https:// URL")
        if self.s3_bucket is not None and (self.s3_access_key is None) != (
            self.s3_secret_key is None
        ):
            raise SettingsError(
                "PORTAL_S3_ACCESS_KEY and PORTAL_S3_SECRET_KEY go together (or set neither to "
                "use the machine's own credentials)"
            )
        if self.min_free_bytes < 0:
            raise SettingsError("PORTAL_MIN_FREE_MB must not be negative")
        if self.reward_min > self.reward_max:
            raise SettingsError("PORTAL_REWARD_MIN must not be above PORTAL_REWARD_MAX")
        if self.onion_address is not None and not self.onion_address.endswith(".onion"):
            raise SettingsError("PORTAL_ONION_ADDRESS must be a host name ending in .onion")


def _address_list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """`10.0.0.5, 172.28.1.0/24` -> ("10.0.0.5", "172.28.1.0/24"); each must parse."""
    raw = env.get(name) or ""
    out: list[str] = []
    for item in raw.replace(",", " ").split():
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise SettingsError(
                f"{name} takes IP addresses or networks (10.0.0.5, 172.28.1.0/24), not {item!r}"
            ) from None
        out.append(item)
    return tuple(out)


def _redis_has_password(url: str) -> bool:
    rest = url.split("://", 1)[1]
    if "@" not in rest:
        return False
    creds = rest.split("@", 1)[0]
    return ":" in creds and bool(creds.split(":", 1)[1])


def _secret(env: Mapping[str, str], name: str) -> str | None:
    """A secret given directly or as NAME_FILE (docker secrets)."""
    path = env.get(f"{name}_FILE")
    if path:
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SettingsError(f"{name}_FILE={path} cannot be read: {exc.strerror}") from exc
    return env.get(name) or None


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    low = raw.strip().lower()
    if low in {"1", "true", "yes", "on"}:
        return True
    if low in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name} must be 1/0, true/false, yes/no or on/off, not {raw!r}")


def _int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, not {raw!r}") from None
    if not lo <= value <= hi:
        raise SettingsError(f"{name} must be between {lo} and {hi}, not {value}")
    return value


_DEADLINE_RULE = re.compile(r"^\s*\d{1,4}\s*(wd|d|m|min)\s*$")


def _reward_approvals(env: Mapping[str, str]) -> tuple[tuple[int | None, int], ...]:
    """`10000:1,50000:2,3` -> ((10000, 1), (50000, 2), (None, 3)): amounts rising, each tier
    between 1 and 5 approvals, the last one a bare count for every larger amount."""
    name = "PORTAL_REWARD_APPROVALS"
    raw = (env.get(name) or "10000:1,2").replace(" ", "")
    expected = f"{name} must look like 10000:1,2 (up to 10,000 RMB one approver, above two)"
    tiers: list[tuple[int | None, int]] = []
    parts = raw.split(",")
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        upto, _sep, count = part.rpartition(":")
        if not count.isdigit() or not 1 <= int(count) <= 5 or (last != (upto == "")):
            raise SettingsError(expected)
        if upto and not upto.isdigit():
            raise SettingsError(expected)
        bound = int(upto) if upto else None
        previous = tiers[-1][0] if tiers else None
        if bound is not None and previous is not None and bound <= previous:
            raise SettingsError(expected)
        tiers.append((bound, int(count)))
    return tuple(tiers)


def _deadline_rules(env: Mapping[str, str]) -> dict[str, str]:
    """PORTAL_DEADLINE_HANDLING=30d -> {"handling": "30d"}; *_EXTENSION -> "handling.extension"."""
    rules: dict[str, str] = {}
    for name, value in env.items():
        if not name.startswith("PORTAL_DEADLINE_") or name == "PORTAL_DEADLINE_PROFILE":
            continue
        stage = name[len("PORTAL_DEADLINE_") :].lower()
        if stage.endswith("_extension"):
            if not value.strip().isdigit():
                raise SettingsError(f"{name} must be a number of days")
            rules[stage[: -len("_extension")] + ".extension"] = value.strip()
        elif _DEADLINE_RULE.match(value):
            rules[stage] = value.strip()
        else:
            raise SettingsError(f"{name} must look like 15wd, 30d, 3m or 10min")
    return rules


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> Any:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip()
    if value not in choices:
        raise SettingsError(f"{name} must be one of {', '.join(choices)}, not {raw!r}")
    return value
